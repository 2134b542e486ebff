"""Resume is the default for a DiT stage: its checkpoints survive a re-plan, a changed plan refuses to
resume them, and only an explicit restart (`resume=False`, the CLI's --restart) deletes them."""

from __future__ import annotations

import dataclasses

import pytest

from tests.training.dit.fixtures import write_clips
from training.dit.config import DiTTrainConfig
from training.dit.stages import PLAN_FILE, StagePlanChangedError, prepare_stage
from training.tracking import TrackingSettings


def test_checkpoints_are_kept_unless_restarted(tmp_path):
    config = DiTTrainConfig.preset("tiny")
    records = write_clips(tmp_path / "clips")

    def plan(clips=records, **options):
        return prepare_stage(config, "image_256", clips, tmp_path / "ckpt", tmp_path / "latents", TrackingSettings(),
                             progress=False, **options)  # fmt: skip

    stage_dir = plan().checkpoint_dir
    checkpoint = stage_dir / "step_00000004" / "marker"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("weights")
    plan()  # the default resumes: same plan, checkpoints kept
    assert checkpoint.read_text() == "weights"

    other_clips = [dataclasses.replace(r, weight=r.weight * 2) for r in records]
    with pytest.raises(StagePlanChangedError, match=r"another plan \(changed: samples\); pass --restart"):
        plan(other_clips)
    assert checkpoint.exists()  # refusing deletes nothing
    plan(other_clips, restart_if_plan_changed=True)  # the Dagster asset on new inputs
    assert not checkpoint.exists() and (stage_dir / PLAN_FILE).is_file()

    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_text("weights")
    plan(other_clips, resume=False)  # --restart
    assert not checkpoint.exists() and (stage_dir / PLAN_FILE).is_file()

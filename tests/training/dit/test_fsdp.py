"""FSDP2 full sharding + Ulysses SP 2 on 2 gloo ranks vs one process, and a resume on another world size (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from tests.training.dit import fsdp_job
from tests.training.dit.fixtures import plan_first_stage, write_clips
from training.backends import Backend, make_backend
from training.checkpointing import CheckpointManager, load_checkpoint
from training.dit.config import DiTTrainConfig
from training.dit.stages import PLAN_FILE, StagePlan, train_stage
from training.fsdp_backend import FSDPBackend, consolidate_sharded
from training.parallel.launch import spawn_local

pytestmark = pytest.mark.slow


def test_two_ranks_sp2_full_sharding_match_one_process_and_resume_on_one_rank(tmp_path: Path):
    torch.set_num_threads(1)
    records = write_clips(tmp_path / "clips", count=3)
    base = DiTTrainConfig.preset("tiny", checkpoint_every=3, sample_prompts=())
    reference = train_stage(
        plan_first_stage(base, records, tmp_path, "ref"), Backend(precision="fp32"), with_samples=False
    )

    config = base.model_copy(update={"sharding": "full", "sequence_parallel": 2, "num_workers": 2})
    plan = plan_first_stage(config, records, tmp_path, "fsdp")
    out = tmp_path / "fsdp.json"
    spawn_local(fsdp_job.train, 2, (str(plan.checkpoint_dir / PLAN_FILE), "full", 2, str(out)))
    sharded = json.loads(out.read_text())

    assert sharded["steps_done"] == reference.steps_done == 6 and sharded["world_size"] == 2
    assert sharded["last_loss"] == pytest.approx(reference.last_loss, rel=1e-3)
    assert sharded["final_loss"] == pytest.approx(reference.final_loss, rel=1e-3)

    step6 = plan.checkpoint_dir / "step_000000006"
    meta = load_checkpoint(step6)
    assert meta.metadata["world_size"] == 2 and meta.metadata["sequence_parallel"] == 2
    assert sorted(p.name for p in (step6 / "dcp").iterdir()) == [".metadata", "__0_0.distcp", "__1_0.distcp"]
    # The whole-weight copies gathered from the shards equal the one-process run's weights.
    ref_ema = load_file(str(Path(reference.checkpoint) / "ema.safetensors"))
    fsdp_ema = load_file(str(step6 / "ema.safetensors"))
    assert ref_ema.keys() == fsdp_ema.keys()
    assert all(torch.allclose(ref_ema[k], fsdp_ema[k], rtol=1e-4, atol=1e-6) for k in ref_ema)

    # Resume on ONE rank from the 2-rank step-3 checkpoint (DCP reshards 2 shards into 1).
    (plan.checkpoint_dir / "latest").unlink()
    published = step6.rename(tmp_path / "two_rank_step6")
    backend = make_backend(None, "fp32", "full", 1)  # a one-rank process group in this process
    try:
        resumed = train_stage(StagePlan.load(plan.checkpoint_dir / PLAN_FILE), backend, with_samples=False)
    finally:
        dist.destroy_process_group()
    assert resumed.resumed_from == 3 and resumed.steps_done == 6
    assert resumed.last_loss == pytest.approx(sharded["last_loss"], rel=1e-4)
    again = load_file(str(plan.checkpoint_dir / "step_000000006" / "ema.safetensors"))
    assert all(
        torch.allclose(again[k], load_file(str(published / "ema.safetensors"))[k], atol=1e-6) for k in again
    )


class _DiesAfterShards(FSDPBackend):
    """FSDP2 whose process 'dies' once its shards of step 6 are on disk (written by the background
    async save), before rank 0 publishes."""

    def begin_save_sharded(self, models, staging, extra=None):
        finish = super().begin_save_sharded(models, staging, extra)  # async: written in the background

        def finish_then_die() -> bool:
            finish()
            if staging.name.endswith("000000006"):
                raise SystemExit("killed while saving")
            return True

        return finish_then_die


def test_a_save_killed_after_writing_shards_leaves_the_previous_checkpoint_latest(tmp_path: Path):
    torch.set_num_threads(1)
    records = write_clips(tmp_path / "clips", count=3)
    config = DiTTrainConfig.preset("tiny", checkpoint_every=3, sample_prompts=(), sharding="full")
    plan = plan_first_stage(config, records, tmp_path, "ckpt")
    make_backend(None, "fp32", "full")  # the one-rank process group of this process
    try:
        with pytest.raises(SystemExit, match="killed while saving"):
            train_stage(plan, _DiesAfterShards("full", 1, "fp32"), with_samples=False)
        manager = CheckpointManager(plan.checkpoint_dir)
        assert manager.latest() == plan.checkpoint_dir / "step_000000003"
        assert (plan.checkpoint_dir / ".staging-000000006" / ".metadata").is_file()  # shards, unpublished
        resumed = train_stage(plan, FSDPBackend("full", 1, "fp32"), with_samples=False)
    finally:
        dist.destroy_process_group()
    assert resumed.resumed_from == 3 and resumed.steps_done == 6
    assert manager.latest() == plan.checkpoint_dir / "step_000000006"
    assert not (plan.checkpoint_dir / ".staging-000000006").exists()
    # Offline consolidation of the shards gives the whole weights the save gathered.
    step6 = plan.checkpoint_dir / "step_000000006"
    whole = consolidate_sharded(step6 / "dcp")
    for part, file in (("dit.model", "dit.safetensors"), ("ema", "ema.safetensors")):
        gathered = load_file(str(step6 / file))
        assert whole[part].keys() == gathered.keys()
        assert all(torch.equal(whole[part][k], gathered[k]) for k in gathered)
    with pytest.raises(KeyError, match="vae"):
        consolidate_sharded(step6 / "dcp", ("vae.model",))

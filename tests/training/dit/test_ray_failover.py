"""Ray Train fault tolerance: a worker SIGKILLed mid-stage, the group restarts from the latest checkpoint (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.dit.fixtures import plan_first_stage, write_clips
from tests.training.dit.fsdp_job import KillRankOnce
from training.checkpointing import load_checkpoint
from training.dit.config import DiTTrainConfig

pytestmark = pytest.mark.slow


def test_killed_worker_restarts_from_the_latest_checkpoint_and_finishes(tmp_path: Path):
    from media.ray_cluster import shutdown_ray
    from training.dit.run import StageJob
    from training.launch import LaunchSettings, launch

    records = write_clips(tmp_path / "clips", count=2)
    config = DiTTrainConfig.preset(
        "tiny", checkpoint_every=3, sample_prompts=(), num_workers=2, max_failures=1
    )
    plan = plan_first_stage(config, records, tmp_path, "ckpt")
    marker = tmp_path / "killed_pid"
    job = StageJob(plan, with_samples=False, step_hook=KillRankOnce(str(marker), rank=1, step=4))
    try:
        result = launch(job, LaunchSettings.for_config(config, mode="ray"))
    finally:
        shutdown_ray()
    assert marker.is_file()  # rank 1 really died after step 4
    # The restarted group resumed from step 3's checkpoint and finished at the same final step.
    assert result.resumed_from == 3 and result.steps_done == 6 and result.world_size == 2
    assert result.checkpoint is not None and load_checkpoint(result.checkpoint).step == 6

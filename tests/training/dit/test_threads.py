"""A DiT stage trains on `cpu_threads` and leaves the process's count as it found it (Dagster's
in-process executor runs the next asset in the same process)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.training.dit.fixtures import plan_first_stage, write_clips
from training.dit.config import DiTTrainConfig
from training.dit.trainer import DiTTrainer


def test_stage_threads_are_scoped_to_the_stage(tmp_path: Path) -> None:
    records = write_clips(tmp_path / "clips", count=2)
    config = DiTTrainConfig.preset("tiny", sample_prompts=())
    assert config.cpu_threads == 1
    plan = plan_first_stage(config, records, tmp_path, "checkpoints")
    seen: list[int] = []
    torch.set_num_threads(2)
    trainer = DiTTrainer(
        plan.config, plan.stage, plan.samples, load_file(str(plan.empty_prompt_path)), tmp_path / "run",
        step_hook=lambda _step: seen.append(torch.get_num_threads()),
    )  # fmt: skip
    assert trainer.train().steps_done == config.stage("image_256").steps
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2

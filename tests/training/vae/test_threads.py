"""A VAE run uses its `cpu_threads` while it trains and leaves the process's count as it found it:
Dagster's in-process executor runs every later asset (latents, the DiT stages) in the same process."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
import torch

from tests.training.vae.conftest import micro_config
from training.vae.trainer import VAETrainer


def test_training_threads_are_scoped_to_the_run(tmp_path: Path, clip_paths: list[Path]) -> None:
    seen: list[int] = []

    def evaluator(_vae: object) -> dict[str, float]:
        seen.append(torch.get_num_threads())
        return {"psnr_video": 0.0}

    torch.set_num_threads(2)
    config = micro_config(cpu_threads=1, eval_every=5).replace(stages=micro_config().stages[:1])
    result = VAETrainer(config, clip_paths, tmp_path / "ckpt", evaluator=evaluator).train()
    assert result.steps_done == 5
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_zero_threads_is_refused_when_the_config_is_read() -> None:
    with pytest.raises(pydantic.ValidationError, match="cpu_threads"):
        micro_config(cpu_threads=0)

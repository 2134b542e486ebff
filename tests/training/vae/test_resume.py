"""Exact resume: train 10 steps straight == train 5, stop, resume in a new trainer, train 5 more."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.training.vae.conftest import micro_config
from training.vae.trainer import VAETrainer


def test_resume_is_bit_exact(tmp_path: Path, clip_paths: list[Path]) -> None:
    torch.set_num_threads(1)
    config = micro_config()
    straight = VAETrainer(config, clip_paths, tmp_path / "straight")
    result = straight.train()
    assert result.steps_done == 10 and result.resumed_from == 0

    first = VAETrainer(config, clip_paths, tmp_path / "split")
    assert first.train(max_steps=5).steps_done == 5
    second = VAETrainer(config, clip_paths, tmp_path / "split")
    resumed = second.train()
    assert resumed.resumed_from == 5 and resumed.steps_done == 10

    for name in ("vae", "disc"):
        a = getattr(straight, name).module.state_dict()
        b = getattr(second, name).module.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{name} weights differ after resume"
    assert all(torch.equal(straight.ema.shadow[k], second.ema.shadow[k]) for k in straight.ema.shadow)
    assert [p.name for p in second.checkpoints.checkpoints()] == ["step_000000005", "step_000000010"]

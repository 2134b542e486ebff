"""The tiny profile learns: held-out PSNR (image and video, EMA weights) rises clearly in under a minute.

A shortened tiny run (one 32 px stage, no GAN) keeps this under ~90 s on two shared cores; the full
tiny curriculum is `videofoundry train-vae --profile tiny` (numbers in the issue report).
"""

from __future__ import annotations

from pathlib import Path

import torch

from evaluation.vae_benchmarks import HeldoutEvaluator
from tests.training.vae.conftest import micro_config
from training.vae.config import CurriculumStage
from training.vae.trainer import VAETrainer


def test_heldout_psnr_rises(tmp_path: Path, clip_paths: list[Path]) -> None:
    torch.set_num_threads(1)  # oversubscribed OpenMP threads spin on a loaded 2-core machine
    stage = CurriculumStage(
        name="low_res_short", steps=100, frames=5, height=32, width=32, video_batch=4, image_batch=8
    )
    config = micro_config(stages=(stage,), lr=5e-4, warmup_steps=5, disc_start_step=10_000, eval_every=100)
    evaluator = HeldoutEvaluator(image_size=32, frames=5, size=32, items=2)
    result = VAETrainer(config, clip_paths, tmp_path / "ckpt", evaluator=evaluator).train()
    first, last = result.evals[0], result.evals[-1]
    assert first["step"] == 0 and last["step"] == 100
    # Deterministic (the stand-in corpus encodes to the same bytes every time). At lr 5e-4 seeds 0-3
    # rose 2.1-2.9 dB (image) and 1.7-3.6 dB (video) in 100 steps; at lr 2e-3 seed 2 ended below
    # its start, which is why the rate is lower than the tiny profile's.
    assert last["psnr_image"] - first["psnr_image"] > 1.5, result.evals
    assert last["psnr_video"] - first["psnr_video"] > 1.5, result.evals

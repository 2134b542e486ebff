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
    config = micro_config(stages=(stage,), lr=2e-3, warmup_steps=5, disc_start_step=10_000, eval_every=100)
    evaluator = HeldoutEvaluator(image_size=32, frames=5, size=32, items=2)
    result = VAETrainer(config, clip_paths, tmp_path / "ckpt", evaluator=evaluator).train()
    first, last = result.evals[0], result.evals[-1]
    assert first["step"] == 0 and last["step"] == 100
    # Seeds 0-3 rose 1.6-4.7 dB (image) and 2.1-4.4 dB (video) in 100 steps. A seed's rise varies by
    # ~1 dB between runs (the stand-in corpus's libx264 bytes are not stable), so the bar is 1 dB.
    assert last["psnr_image"] - first["psnr_image"] > 1.0, result.evals
    assert last["psnr_video"] - first["psnr_video"] > 1.0, result.evals

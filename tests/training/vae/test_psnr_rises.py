"""The VAE trainer learns: held-out PSNR (image and video, EMA weights) rises clearly in a short run.

A micro run of the tiny VAE (one 32 px stage, GAN and perceptual term off): 25-50 s on two shared
cores; the full tiny curriculum is `videofoundry train-vae --profile tiny`.

Why the run looks like this (measured on this repo's 2-core Xeon, 8 seeds each): a short run only
gets as far as the training clips' overall colours and brightness, so its held-out PSNR is decided
by how well those transfer.
- On the 8-clip `clip_paths` corpus (8 photos) the EMA model levels off at ~10-11 dB (7-item mean)
  and stays there to step 1000 at lr 2e-3; the untrained model already scores 8.2-9.5 dB depending
  on the seed. The old run (lr 5e-4, 100 steps, 2 held-out items, one the near-black Hubble
  field) rose 0.85-3.81 dB (image) and 1.33-3.53 dB (video), so its 1.5 dB bar passed or failed
  with the machine's float rounding.
- On all 22 training photos (24 clips) the same model reaches ~12 dB by step 150 and the rise is
  steady; averaging over all held-out items removes the single-photo swings.
- The perceptual term is off because it is half of each CPU step and PSNR follows the L1 term;
  with it (150 steps) the worst seed rose 2.01 / 1.92 dB, without it 2.63 / 2.33 dB.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evaluation.vae_benchmarks import HeldoutEvaluator
from tests.training.vae.conftest import micro_config
from training.vae.config import CurriculumStage
from training.vae.standin_corpus import training_photo_paths, write_standin_corpus
from training.vae.trainer import VAETrainer

STEPS = 150
# Rise over STEPS steps at seeds 0-7, dB (min / median / max): image 2.63 / 3.34 / 3.79, video
# 2.33 / 3.00 / 3.55; with 2 threads (another reduction order) seeds 0-3: image 2.52-3.30, video
# 2.33-3.02. With lr 0 the rise is 1e-5 dB (EMA rounding), so a trainer that does not learn fails.
MIN_RISE_DB = 1.0


@pytest.fixture(scope="module")
def diverse_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One clip per packaged training photo (24 clips; each photo at least once)."""
    clips = max(24, len(training_photo_paths()))
    return write_standin_corpus(tmp_path_factory.mktemp("standin_all"), clips=clips, frames=24, size=48)


def test_heldout_psnr_rises(tmp_path: Path, diverse_clips: list[Path]) -> None:
    torch.set_num_threads(1)  # oversubscribed OpenMP threads spin on a loaded 2-core machine
    stage = CurriculumStage(
        name="low_res_short", steps=STEPS, frames=5, height=32, width=32, video_batch=4, image_batch=8
    )
    config = micro_config(
        stages=(stage,), lr=2e-3, warmup_steps=20, disc_start_step=10_000, perceptual_weight=0.0,
        eval_every=STEPS, checkpoint_every=STEPS,
    )  # fmt: skip
    evaluator = HeldoutEvaluator(image_size=32, frames=5, size=32, items=7)
    result = VAETrainer(config, diverse_clips, tmp_path / "ckpt", evaluator=evaluator).train()
    first, last = result.evals[0], result.evals[-1]
    assert first["step"] == 0 and last["step"] == STEPS
    assert last["psnr_image"] - first["psnr_image"] > MIN_RISE_DB, result.evals
    assert last["psnr_video"] - first["psnr_video"] > MIN_RISE_DB, result.evals

"""Shared fixtures for VAE training tests: a stand-in clip corpus and a micro config."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.vae.config import CurriculumStage, VAETrainConfig
from training.vae.standin_corpus import write_standin_corpus


@pytest.fixture(scope="session")
def clip_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_standin_corpus(tmp_path_factory.mktemp("standin"), clips=8, frames=24, size=48)


def micro_config(**overrides: object) -> VAETrainConfig:
    """Two stages of 16-32 px clips, GAN from step 3, tiling toggled in stage 2: seconds per run."""
    base = VAETrainConfig.preset(
        "tiny",
        stages=(
            CurriculumStage(name="short", steps=5, frames=5, height=16, width=16, video_batch=1, image_batch=2),
            CurriculumStage(name="tiling", steps=5, frames=5, height=32, width=32, video_batch=1, image_batch=2,
                            random_tiling=True, tile_size=16, tile_frames=4),
        ),
        disc_start_step=3, checkpoint_every=5, eval_every=1000, sample_every=1000, log_every=5,
        perceptual_max_frames=2, warmup_steps=2,
    )  # fmt: skip
    return base.replace(**overrides)

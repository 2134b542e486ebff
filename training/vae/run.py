"""One entry point for a VAE training run, whichever way it executes.

`run_vae_training` trains in this process when `config.zero_stage` is None, else launches
the same `VAETrainer` on `config.num_workers` DeepSpeed workers through Ray Train
(`training.vae.ray_launch`). Afterwards the EMA weights are exported with `model.checkpoints.save_model`
(safetensors + config.json), the format `model.checkpoints.load_vae`, serving and evaluation read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.checkpoints import save_model
from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem
from training.vae.trainer import (
    Evaluator,
    SampleMaker,
    TrackingSettings,
    TrainResult,
    VAETrainer,
    load_trained_vae,
)


@dataclass
class VAERunOutputs:
    """The training result and where the exported EMA model lies."""

    result: TrainResult
    export_dir: Path | None


def data_fingerprint(items: Sequence[Path | MediaItem]) -> str:
    """A stable id of a media list (paths, frame ranges, sizes, mtimes) for runs without a DVC/lakeFS version."""
    digest = hashlib.sha256()
    spans = sorted(
        (i.path, i.start_frame, i.end_frame or -1) if isinstance(i, MediaItem) else (i, 0, -1) for i in items
    )
    for path, start, end in spans:
        stat = path.stat()
        digest.update(f"{path.resolve()}|{start}|{end}|{stat.st_size}|{int(stat.st_mtime)}\n".encode())
    return f"files:{digest.hexdigest()[:12]}"


def run_vae_training(
    config: VAETrainConfig,
    data_paths: Sequence[Path | MediaItem],
    checkpoint_dir: Path,
    tracking: TrackingSettings,
    evaluator: Evaluator | None = None,
    sample_maker: SampleMaker | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    export_dir: Path | None = None,
    ray_address: str | None = None,
) -> VAERunOutputs:
    """Train (or resume) and export; see module docstring."""
    if config.zero_stage is None:
        trainer = VAETrainer(
            config, data_paths, checkpoint_dir, tracking, evaluator=evaluator, sample_maker=sample_maker
        )
        result = trainer.train(max_steps=max_steps, resume=resume)
    else:
        from training.vae.ray_launch import launch_ray_training

        result = launch_ray_training(
            config,
            data_paths,
            checkpoint_dir,
            tracking,
            evaluator,
            sample_maker,
            max_steps,
            resume,
            ray_address,
        )
    exported = None
    if export_dir is not None and result.checkpoint is not None:
        exported = save_model(load_trained_vae(result.checkpoint, weights="ema"), export_dir)
    return VAERunOutputs(result, exported)

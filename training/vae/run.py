"""One entry point for a VAE training run, whichever way it executes: `train_vae`.

`VAEJob` is the run as a `training.launch.TrainJob`: on whatever backend the launcher gives it, it
builds a `VAETrainer` and trains (or resumes). `train_vae(job)` launches it — in this process for
one worker without ZeRO, else on `config.num_workers` Ray Train workers (DeepSpeed when
`config.zero_stage` is set, DDP otherwise) — and afterwards exports the EMA weights with
`model.checkpoints.save_model` (safetensors + config.json), the format `model.checkpoints.load_vae`,
serving and evaluation read:

    result = train_vae(VAEJob(config, media, checkpoint_dir, tracking, max_steps=100), export_dir)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.checkpoints import save_model
from training.backends import Backend
from training.launch import LaunchSettings, launch
from training.results import TrainResult
from training.tracking import TrackingSettings
from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem
from training.vae.registry import register_vae
from training.vae.trainer import Evaluator, SampleMaker, VAETrainer, load_trained_vae


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


@dataclass(frozen=True)
class VAEJob:
    """A VAE training run as the launcher sees it (picklable: Ray ships it to every worker).

    Media paths and the checkpoint folder are made absolute: workers run elsewhere.
    """

    config: VAETrainConfig
    data: Sequence[Path | MediaItem]
    checkpoint_dir: Path
    tracking: TrackingSettings
    evaluator: Evaluator | None = None
    sample_maker: SampleMaker | None = None
    max_steps: int | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        items = tuple(i if isinstance(i, MediaItem) else Path(i).resolve() for i in self.data)
        object.__setattr__(self, "data", items)
        object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir).resolve())

    @property
    def name(self) -> str:
        return "vae"

    def __call__(self, backend: Backend) -> TrainResult:
        trainer = VAETrainer(
            self.config,
            self.data,
            self.checkpoint_dir,
            self.tracking,
            backend=backend,
            evaluator=self.evaluator,
            sample_maker=self.sample_maker,
        )
        return trainer.train(max_steps=self.max_steps, resume=self.resume)


def train_vae(job: VAEJob, export_dir: Path | None = None, ray_address: str | None = None) -> TrainResult:
    """Run `job` (see module docstring) and, with `export_dir`, export the final EMA weights there
    and register them (`training.vae.registry`: `videofoundry-vae@current`)."""
    result = launch(job, LaunchSettings.for_config(job.config, ray_address=ray_address))
    if export_dir is not None and result.checkpoint is not None:
        save_model(load_trained_vae(result.checkpoint, weights="ema"), export_dir)
        register_vae(job.tracking, result, export_dir)
    return result

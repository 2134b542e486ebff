"""One entry point for a DiT stage, whichever way it executes: `train_dit_stage`.

`StageJob` is a planned stage as a `training.launch.TrainJob`: on whatever backend the launcher
gives it, it trains the stage (`training.dit.stages.train_stage`). `train_dit_stage` plans the
stage in this process (chains to the previous stage, fills the latent cache) and launches the job
— in this process for one worker without ZeRO, else on `config.num_workers` Ray Train workers
(DeepSpeed when `config.zero_stage` is set, DDP otherwise). The CLI and the Dagster stage assets
both call it (through `orchestration.workspace_training`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.backends import Backend
from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import ClipRecord
from training.dit.stages import StagePlan, prepare_stage, train_stage
from training.launch import LaunchSettings, launch
from training.results import TrainResult
from training.tracking import TrackingSettings


def records_fingerprint(records: Sequence[ClipRecord]) -> str:
    """`records:<sha12>` over ids, paths, frame ranges, prompts and weights (a data version without DVC)."""
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.clip_id):
        digest.update(
            f"{r.clip_id}|{r.video_path}|{r.start_frame}|{r.end_frame}|{r.prompt}|{r.weight}\n".encode()
        )
    return f"records:{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class StageJob:
    """A planned DiT stage as the launcher sees it (picklable: Ray ships it to every worker)."""

    plan: StagePlan
    resume: bool = True
    with_samples: bool = True
    step_hook: Callable[[int], None] | None = None

    @property
    def name(self) -> str:
        return f"dit_{self.plan.stage}"

    @property
    def checkpoint_dir(self) -> Path:
        return self.plan.checkpoint_dir

    def __call__(self, backend: Backend) -> TrainResult:
        return train_stage(
            self.plan, backend, resume=self.resume, step_hook=self.step_hook, with_samples=self.with_samples
        )


def train_dit_stage(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    checkpoint_root: Path,
    latent_root: Path,
    tracking: TrackingSettings,
    *,
    vae_path: Path | None = None,
    resume: bool = False,
    launcher: Literal["auto", "local", "ray"] = "auto",
    ray_address: str | None = None,
    progress: bool = True,
) -> TrainResult:
    """Plan the stage (cache latents) and train it; see module docstring.

    Without `resume` the stage starts over. A tracking data version of "unversioned" becomes a
    fingerprint of `records`. `launcher` "auto" picks Ray whenever the config asks for DeepSpeed or
    several workers.
    """
    if tracking.data_version == "unversioned":
        tracking = dataclasses.replace(tracking, data_version=records_fingerprint(records))
    plan = prepare_stage(
        config,
        stage,
        records,
        Path(checkpoint_root).resolve(),
        Path(latent_root).resolve(),
        tracking,
        vae_path=vae_path,
        resume=resume,
        progress=progress,
    )
    settings = LaunchSettings.for_config(config, mode=launcher, ray_address=ray_address)
    return launch(StageJob(plan), settings)

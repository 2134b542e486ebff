"""One entry point for a DiT stage, whichever way it executes: `train_dit_stage`.

`StageJob` is a planned stage (`training.dit.stages.prepare_stage`) as a `training.launch.TrainJob`:
on whatever backend the launcher gives it, it trains the stage (`training.dit.stages.train_stage`).
`train_dit_stage(plan)` launches the job — in this process for one worker without ZeRO, else on
`config.num_workers` Ray Train workers (FSDP2 when `config.sharding` is zero2/full, DeepSpeed
when `config.zero_stage` is set, DDP otherwise; `config.sequence_parallel` ranks per sequence group):

    result = train_dit_stage(prepare_stage(config, "image_256", records, root, latents, tracking))

The CLI and the Dagster stage assets both do this through `orchestration.workspace_training`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from training.backends import Backend
from training.dit.stages import StagePlan, train_stage
from training.launch import LaunchSettings, launch
from training.results import TrainResult


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
    plan: StagePlan,
    launcher: Literal["auto", "local", "ray"] = "auto",
    ray_address: str | None = None,
) -> TrainResult:
    """Train the planned stage (resuming whatever checkpoints `plan.checkpoint_dir` holds).

    `launcher` "auto" picks Ray Train whenever the config asks for DeepSpeed or several workers.
    """
    settings = LaunchSettings.for_config(plan.config, mode=launcher, ray_address=ray_address)
    return launch(StageJob(plan), settings)

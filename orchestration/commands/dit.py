"""DiT command: `videofoundry train-dit --stage NAME [--profile tiny|paper] [--resume]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import (
    ConfigOption,
    DataVersionOption,
    HomeOption,
    ProfileOption,
    ResumeOption,
    UserError,
    app,
    platform_config,
)
from training.dit.config import STAGE_ORDER


@app.command("train-dit")
def train_dit(
    stage: Annotated[str, typer.Option("--stage", help=" | ".join(STAGE_ORDER))],
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    resume: ResumeOption = False,
    clips: Annotated[
        Path | None, typer.Option("--clips", help="JSON clip list instead of the workspace tables.")
    ] = None,
    vae: Annotated[
        Path | None, typer.Option("--vae", help="Trained VAE (default: the workspace export).")
    ] = None,
    launcher: Annotated[
        str,
        typer.Option("--launcher", help="auto | local | ray (auto: ray when the profile uses DeepSpeed)."),
    ] = "auto",
    data_version: DataVersionOption = None,
) -> None:
    """Train one DiT stage from the previous stage's checkpoint (tiny: CPU seconds; paper: ZeRO-2 under Ray).

    Prints one JSON line (stage, steps, loss, registered version, run, data version), then the checkpoint.
    """
    from orchestration.resources import tracking_resource
    from orchestration.workspace import Workspace
    from orchestration.workspace_training import train_dit_stage_in_workspace
    from training.dit.config import DiTTrainConfig
    from training.dit.records import ClipListError
    from training.dit.stages import StageOrderError
    from training.vae.data import TrainingDataError

    if stage not in STAGE_ORDER:
        raise UserError(f"unknown stage {stage!r}; choose one of {', '.join(STAGE_ORDER)}")
    if launcher not in ("auto", "local", "ray"):
        raise UserError(f"--launcher must be auto, local or ray, got {launcher!r}")
    platform = platform_config(home, profile, config)
    try:
        result = train_dit_stage_in_workspace(
            Workspace.at(platform.home), DiTTrainConfig.preset(platform.profile), stage,
            tracking_resource(platform).settings(), clips=clips, vae=vae, require_vae=platform.profile == "paper",
            data_version=data_version, resume=resume, launcher=launcher, ray_address=platform.compute.ray_address,  # type: ignore[arg-type]
        )  # fmt: skip
    except (ClipListError, StageOrderError, TrainingDataError) as error:
        raise UserError(str(error)) from error
    summary = {
        "stage": result.name,
        "steps_done": result.steps_done,
        "resumed_from": result.resumed_from,
        "final_loss": result.final_loss,
        "model_version": result.model_version,
        "run_id": result.run_id,
        "data_version": result.data_version,
    }
    typer.echo(json.dumps(summary))
    typer.echo(f"checkpoint {result.checkpoint}")

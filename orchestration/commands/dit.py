"""DiT command: `videofoundry train-dit --stage NAME [--profile tiny|paper] [--resume]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestration.cli_app import ConfigOption, HomeOption, ProfileOption, UserError, app, platform_config


def dit_records(ws: Any, stage_data: str, clips: Path | None) -> list[Any]:
    """--clips JSON list, else the workspace tables (sft_set: the `sft_set` table of accepted clips)."""
    from training.dit.records import ClipListError, load_clip_list, records_from_tables

    try:
        if clips is not None:
            return load_clip_list(clips)
        return records_from_tables(ws.tables, stage_data)
    except ClipListError as error:
        raise UserError(str(error)) from error


def trained_vae(ws: Any, vae: Path | None, standin_vae: bool) -> Path | None:
    """--vae, else the workspace's exported VAE, else (if `standin_vae`) None: a seed-0 stand-in VAE."""
    if vae is not None:
        if not vae.exists():
            raise UserError(f"--vae {vae} does not exist")
        return vae
    exported = ws.checkpoints / "vae_export"
    if (exported / "config.json").is_file():
        return Path(exported)
    if not standin_vae:
        raise UserError(f"no trained VAE at {exported}; run `videofoundry train-vae` or pass --vae")
    return None


@app.command("train-dit")
def train_dit(
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="image_256 | image_mixscale | video_low_short | video_low_long | video_high_long | sft",
        ),
    ],
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the stage from its latest checkpoint.")
    ] = False,
    clips: Annotated[
        Path | None, typer.Option("--clips", help="JSON clip list instead of the workspace tables.")
    ] = None,
    vae: Annotated[
        Path | None, typer.Option("--vae", help="Trained VAE (default: the workspace export).")
    ] = None,
    launcher: Annotated[
        str | None,
        typer.Option("--launcher", help="local | ray (default: ray when the profile uses DeepSpeed)."),
    ] = None,
    data_version: Annotated[
        str | None, typer.Option("--data-version", help="Recorded in MLflow/registry.")
    ] = None,
) -> None:
    """Train one DiT stage from the previous stage's checkpoint (tiny: CPU seconds; paper: ZeRO-2 under Ray)."""
    from orchestration.workspace import Workspace
    from training.dit.config import STAGE_ORDER, DiTTrainConfig
    from training.dit.launcher import train_dit_stage
    from training.dit.stages import StageOrderError
    from training.dit.trainer import StageTracking

    if stage not in STAGE_ORDER:
        raise UserError(f"unknown stage {stage!r}; choose one of {', '.join(STAGE_ORDER)}")
    if launcher not in (None, "local", "ray"):
        raise UserError(f"--launcher must be local or ray, got {launcher!r}")
    platform = platform_config(home, profile, config)
    ws = Workspace.at(platform.home).ensure()
    train_config = platform.config_for(DiTTrainConfig)
    records = dit_records(ws, train_config.stage(stage).data, clips)
    if not records:
        raise UserError(f"stage {stage}: no clips in '{train_config.stage(stage).data}'")
    tracking = StageTracking(
        uri=platform.tracking.mlflow_uri or ws.mlflow_uri,
        artifact_location=ws.mlflow_artifacts,
        experiment=f"{platform.tracking.experiment}-dit",
        registered_model=platform.tracking.registered_model,
        data_version=data_version or "unversioned",
    )
    try:
        result = train_dit_stage(
            train_config,
            stage,
            records,
            ws.checkpoints / "dit",
            ws.latents,
            tracking,
            vae_path=trained_vae(ws, vae, train_config.standin_vae),
            resume=resume,
            launcher=launcher,  # type: ignore[arg-type]
            ray_address=platform.compute.ray_address,
        )
    except StageOrderError as error:
        raise UserError(str(error)) from error
    summary = {
        k: result[k]
        for k in (
            "stage",
            "steps_done",
            "resumed_from",
            "final_loss",
            "model_version",
            "run_id",
            "data_version",
        )
    }
    typer.echo(json.dumps(summary))
    typer.echo(f"checkpoint {result['checkpoint']}")

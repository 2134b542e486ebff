"""Training commands: `videofoundry train-vae` and `videofoundry train-dit --stage NAME`.

Thin: both call `orchestration.workspace_training`, the functions the Dagster `vae` and
`dit_<stage>` assets call, and print what the run did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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

TrainConfigOption = Annotated[
    Path | None, typer.Option("--train-config", help="YAML of VAETrainConfig fields overriding the profile.")
]
MaxStepsOption = Annotated[
    int | None, typer.Option("--max-steps", help="Stop after this many steps in total.", min=1)
]


def _train_config(profile: str, overrides_file: Path | None) -> Any:
    from orchestration.config import read_yaml_mapping
    from orchestration.profiles import profile_config
    from training.vae.config import VAETrainConfig

    data = profile_config(VAETrainConfig, profile).model_dump()
    if overrides_file is not None:
        data |= read_yaml_mapping(overrides_file, "--train-config")
    return VAETrainConfig.model_validate(data)  # a ValidationError is bad input (exit 2)


@app.command("train-vae")
def train_vae(
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data", help="Videos/images: files, folders, a .txt list or a .parquet with a path column."
        ),
    ] = None,
    resume: ResumeOption = True,
    train_config: TrainConfigOption = None,
    max_steps: MaxStepsOption = None,
    data_version: DataVersionOption = None,
) -> None:
    """Train the causal 3D VAE (tiny: CPU minutes; paper: DeepSpeed under Ray) and export its EMA weights.

    Data: --data, else the 256p tier of the curation tables, else raw videos, else a stand-in corpus.
    """
    from orchestration.resources import tracking_resource
    from orchestration.workspace import Workspace
    from orchestration.workspace_training import train_vae_in_workspace
    from training.vae.data import TrainingDataError

    platform = platform_config(home, profile, config)
    cfg = _train_config(profile or platform.profile, train_config)
    try:
        run = train_vae_in_workspace(
            Workspace.at(platform.home), cfg, tracking_resource(platform).settings(), data=data, fallback=True,
            data_version=data_version, max_steps=max_steps, resume=resume, ray_address=platform.compute.ray_address,
        )  # fmt: skip
    except TrainingDataError as error:
        raise UserError(str(error)) from error
    result = run.result
    typer.echo(f"training data: {run.media} files from {run.source}")
    typer.echo(
        f"steps {result.resumed_from} → {result.steps_done} of {cfg.total_steps}; mlflow run {result.run_id}"
    )
    for row in result.evals:
        typer.echo(
            f"  step {int(row['step']):>6}  held-out PSNR image {row['psnr_image']:.2f} dB  video {row['psnr_video']:.2f} dB"
        )
    typer.echo(
        f"samples/s {result.samples_per_second:.2f}; checkpoint {result.checkpoint}; export {run.export_dir}"
    )


@app.command("train-dit")
def train_dit(
    stage: Annotated[str, typer.Option("--stage", help=" | ".join(STAGE_ORDER))],
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    resume: ResumeOption = True,
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
            Workspace.at(platform.home), platform.config_for(DiTTrainConfig), stage,
            tracking_resource(platform).settings(), clips=clips, vae=vae,
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

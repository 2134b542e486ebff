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
    LockWaitOption,
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
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="Training workers, one per GPU (default: the profile's).")
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (with `step` and `loss`) as the last line.")
]


def _with_settings(config: Any, **settings: Any) -> Any:
    """`config` with the CLI's settings (those not None) applied and validated again."""
    from pydantic import ValidationError

    updates = {k: v for k, v in settings.items() if v is not None}
    try:
        return type(config).model_validate(config.model_dump() | updates)
    except ValidationError as error:
        first = error.errors()[0]
        raise UserError(f"invalid training settings: {first['loc']}: {first['msg']}") from error


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
    workers: WorkersOption = None,
    json_out: JsonOption = False,
    wait: LockWaitOption = 0.0,
) -> None:
    """Train the causal 3D VAE (tiny: CPU minutes; paper: DeepSpeed under Ray) and export its EMA weights.

    Data: --data, else the 256p tier of the curation tables, else raw videos, else a stand-in corpus.
    """
    from orchestration.resources import tracking_resource
    from orchestration.workspace import Workspace
    from orchestration.workspace_lock import workspace_lock
    from orchestration.workspace_training import train_vae_in_workspace
    from training.vae.data import TrainingDataError

    platform = platform_config(home, profile, config)
    cfg = _with_settings(_train_config(profile or platform.profile, train_config), num_workers=workers)
    workspace = Workspace.at(platform.home)
    try:
        with workspace_lock(workspace, "videofoundry train-vae", wait):
            run = train_vae_in_workspace(
                workspace, cfg, tracking_resource(platform).settings(), data=data, fallback=True,
                data_version=data_version, max_steps=max_steps, resume=resume, ray_address=platform.compute.ray_address,
            )  # fmt: skip
    except TrainingDataError as error:
        raise UserError(str(error)) from error
    result = run.result
    if json_out:
        typer.echo(json.dumps(_json_summary(result, export=str(run.export_dir))))
        return
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
    workers: WorkersOption = None,
    sequence_parallel: Annotated[
        int | None,
        typer.Option("--sequence-parallel", help="Ulysses sequence-parallel group size (divides --workers)."),
    ] = None,
    sharding: Annotated[
        str | None,
        typer.Option(
            "--sharding", help="none | zero2 | full (FSDP2; `videofoundry plan-training` says which fits)."
        ),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop the stage at this step (checkpointed).")
    ] = None,
    json_out: JsonOption = False,
    wait: LockWaitOption = 0.0,
) -> None:
    """Train one DiT stage from the previous stage's checkpoint (tiny: CPU seconds; paper: FSDP2 under Ray).

    Prints one JSON line (stage, steps, loss, registered version, run, data version), then the checkpoint.
    """
    from orchestration.resources import tracking_resource
    from orchestration.workspace import Workspace
    from orchestration.workspace_lock import workspace_lock
    from orchestration.workspace_training import train_dit_stage_in_workspace
    from training.dit.config import DiTTrainConfig
    from training.dit.records import ClipListError
    from training.dit.stages import StageOrderError
    from training.vae.data import TrainingDataError

    if stage not in STAGE_ORDER:
        raise UserError(f"unknown stage {stage!r}; choose one of {', '.join(STAGE_ORDER)}")
    if launcher not in ("auto", "local", "ray"):
        raise UserError(f"--launcher must be auto, local or ray, got {launcher!r}")
    if sharding is not None and sharding not in ("none", "zero2", "full"):
        raise UserError(f"--sharding must be none, zero2 or full, got {sharding!r}")
    platform = platform_config(home, profile, config)
    dit_config = _with_settings(
        platform.config_for(DiTTrainConfig),
        num_workers=workers,
        sequence_parallel=sequence_parallel,
        sharding=sharding,
        max_steps=max_steps,
    )
    workspace = Workspace.at(platform.home)
    try:
        with workspace_lock(workspace, f"videofoundry train-dit --stage {stage}", wait):
            result = train_dit_stage_in_workspace(
                workspace, dit_config, stage,
                tracking_resource(platform).settings(), clips=clips, vae=vae,
                data_version=data_version, resume=resume, launcher=launcher, ray_address=platform.compute.ray_address,  # type: ignore[arg-type]
            )  # fmt: skip
    except (ClipListError, StageOrderError, TrainingDataError) as error:
        raise UserError(str(error)) from error
    if json_out:
        typer.echo(json.dumps(_json_summary(result, stage=result.name, model_version=result.model_version)))
        return
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


def _json_summary(result: Any, **extra: Any) -> dict[str, Any]:
    """The `--json` line: the final step and its loss, then what the run did."""
    return {
        "step": result.steps_done,
        "loss": result.last_loss,
        "resumed_from": result.resumed_from,
        "mean_loss": result.final_loss,
        "world_size": result.world_size,
        "run_id": result.run_id,
        "data_version": result.data_version,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        **extra,
    }

"""VAE commands: `videofoundry train-vae` and `videofoundry eval-vae`."""

from __future__ import annotations

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


def _train_config(profile: str, overrides_file: Path | None) -> Any:
    import yaml
    from pydantic import ValidationError

    from training.vae.config import VAE_TRAIN_PRESETS, VAETrainConfig

    if profile not in VAE_TRAIN_PRESETS:
        raise UserError(f"unknown VAE profile {profile!r}; choose one of {sorted(VAE_TRAIN_PRESETS)}")
    data = VAE_TRAIN_PRESETS[profile].model_dump()
    if overrides_file is not None:
        if not overrides_file.is_file():
            raise UserError(f"--train-config {overrides_file} does not exist")
        extra = yaml.safe_load(overrides_file.read_text()) or {}
        if not isinstance(extra, dict):
            raise UserError(f"--train-config {overrides_file} must hold a mapping of VAETrainConfig fields")
        data |= extra
    try:
        return VAETrainConfig.model_validate(data)
    except ValidationError as error:
        raise UserError(
            f"invalid VAE training config: {error.errors()[0]['loc']}: {error.errors()[0]['msg']}"
        ) from error


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
    train_config: Annotated[
        Path | None,
        typer.Option("--train-config", help="YAML of VAETrainConfig fields overriding the profile."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop after this many steps in total.")
    ] = None,
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


def load_any_vae(path: Path, device: str) -> Any:
    """A VAE from a training checkpoint (dir or root) or any format `model.checkpoints.load_vae` reads."""
    from model.checkpoints import load_vae
    from training.vae.trainer import load_trained_vae

    if not path.exists():
        raise UserError(f"--checkpoint {path} does not exist")
    if (path / "meta.json").is_file() or (path / "latest").is_file():
        return load_trained_vae(path, weights="ema", device=device)
    return load_vae(path, device=device).eval()


@app.command("eval-vae")
def eval_vae(
    checkpoint: Annotated[
        Path,
        typer.Option("--checkpoint", help="Training checkpoint, exported model or official/diffusers VAE."),
    ],
    out: Annotated[Path, typer.Option("--out", help="JSON report path (a .md table is written beside it).")],
    imagenet: Annotated[Path | None, typer.Option("--imagenet", help="Local ImageNet val folder.")] = None,
    mcl_jcv: Annotated[
        Path | None, typer.Option("--mcl-jcv", help="Local MCL-JCV folder (.yuv or .mp4).")
    ] = None,
    heldout: Annotated[
        bool, typer.Option("--heldout/--no-heldout", help="Also score the held-out demo set.")
    ] = True,
    limit: Annotated[
        int | None, typer.Option("--limit", help="First N images/sequences per benchmark.")
    ] = None,
    heldout_size: Annotated[int, typer.Option("--heldout-size", help="Held-out image/clip size (px).")] = 256,
    heldout_frames: Annotated[
        int, typer.Option("--heldout-frames", help="Held-out clip frames (4n+1).")
    ] = 33,
    tiled: Annotated[
        bool, typer.Option("--tiled/--untiled", help="Tiled encode/decode (large inputs).")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
) -> None:
    """Reconstruction PSNR/SSIM/perceptual on ImageNet 256², MCL-JCV 33×360×640 and the held-out set."""
    from evaluation.vae_benchmarks import evaluate_vae, write_report
    from evaluation.vae_datasets import DatasetLayoutError

    vae = load_any_vae(checkpoint, device)
    try:
        report = evaluate_vae(
            vae, str(checkpoint), imagenet=imagenet, mcl_jcv=mcl_jcv, heldout=heldout, limit=limit,
            heldout_size=heldout_size, heldout_frames=heldout_frames, tiled=tiled,
        )  # fmt: skip
    except DatasetLayoutError as error:
        raise UserError(str(error)) from error
    write_report(report, out)
    typer.echo(report["table1_markdown"])
    typer.echo(f"wrote {out} and {out.with_suffix('.md')}")

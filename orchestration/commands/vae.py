"""VAE commands: `videofoundry train-vae` and `videofoundry eval-vae`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestration.cli_app import ConfigOption, HomeOption, ProfileOption, UserError, app, platform_config


def _train_config(profile: str, overrides_file: Path | None) -> Any:
    import yaml
    from pydantic import ValidationError

    from orchestration.profiles import profile_config
    from training.vae.config import VAETrainConfig

    data = profile_config(VAETrainConfig, profile).model_dump()
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


def _training_data(data: list[Path] | None, home: Path) -> tuple[list[Any], str]:
    """--data, else the 256p tier of the curation tables, else raw videos, else the stand-in corpus."""
    from media.tables import table_path
    from training.vae.data import TrainingDataError, clips_from_tier_tables, resolve_media_paths
    from training.vae.standin_corpus import write_standin_corpus

    try:
        if data:
            paths: list[Any] = []
            for item in data:
                paths += resolve_media_paths(item)
            return paths, "--data"
        tables = home / "tables"
        if table_path(tables, "tiers").exists() and table_path(tables, "clips").exists():
            return clips_from_tier_tables(tables, "tier_256p"), "tier_256p clips"
        for folder in (home / "raw",):
            if folder.is_dir() and any(folder.rglob("*.mp4")):
                return resolve_media_paths(folder), str(folder)
    except TrainingDataError as error:
        raise UserError(str(error)) from error
    standin = home / "vae_standin"
    return write_standin_corpus(standin), f"stand-in corpus ({standin})"


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
    resume: Annotated[
        bool, typer.Option("--resume/--restart", help="Continue from the latest checkpoint.")
    ] = True,
    train_config: Annotated[
        Path | None,
        typer.Option("--train-config", help="YAML of VAETrainConfig fields overriding the profile."),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", help="Stop after this many steps in total.")
    ] = None,
    data_version: Annotated[str | None, typer.Option("--data-version", help="Recorded in MLflow.")] = None,
) -> None:
    """Train the causal 3D VAE (tiny: CPU minutes; paper: DeepSpeed under Ray) and export its EMA weights."""
    import shutil

    from evaluation.vae_benchmarks import HeldoutEvaluator
    from orchestration.workspace import Workspace
    from training.tracking import default_tracking_uri
    from training.vae.run import data_fingerprint, run_vae_training
    from training.vae.trainer import TrackingSettings

    platform = platform_config(home, profile, config)
    ws = Workspace.at(platform.home)
    cfg = _train_config(profile or platform.profile, train_config)
    paths, source = _training_data(data, ws.home)
    checkpoint_dir = ws.checkpoints / "vae"
    if not resume and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    uri, artifacts = default_tracking_uri(ws.home)
    tracking = TrackingSettings(
        uri=platform.tracking.mlflow_uri or uri,
        artifact_location=artifacts,
        experiment=f"{platform.tracking.experiment}-vae",
        run_name=f"vae-{profile or platform.profile}",
        data_version=data_version or data_fingerprint(paths),
    )
    evaluator = HeldoutEvaluator(
        cfg.heldout_image_size, cfg.heldout_frames, cfg.heldout_size, cfg.heldout_items
    )
    typer.echo(f"training data: {len(paths)} files from {source}; checkpoints: {checkpoint_dir}")
    outputs = run_vae_training(
        cfg, paths, checkpoint_dir, tracking, evaluator, evaluator.samples, max_steps, resume,
        export_dir=ws.checkpoints / "vae_export", ray_address=platform.compute.ray_address,
    )  # fmt: skip
    result = outputs.result
    typer.echo(
        f"steps {result.resumed_from} → {result.steps_done} of {cfg.total_steps}; mlflow run {result.run_id}"
    )
    for row in result.evals:
        typer.echo(
            f"  step {int(row['step']):>6}  held-out PSNR image {row['psnr_image']:.2f} dB  video {row['psnr_video']:.2f} dB"
        )
    typer.echo(
        f"samples/s {result.samples_per_second:.2f}; checkpoint {result.checkpoint}; export {outputs.export_dir}"
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

"""VAE evaluation command: `videofoundry eval-vae` (training is `videofoundry train-vae`, commands.train)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from orchestration.cli_app import UserError, app, output_file


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
        int | None, typer.Option("--limit", help="First N images/sequences per benchmark.", min=1)
    ] = None,
    heldout_size: Annotated[
        int, typer.Option("--heldout-size", help="Held-out image/clip size (px).", min=16)
    ] = 256,
    heldout_frames: Annotated[
        int, typer.Option("--heldout-frames", help="Held-out clip frames (4n+1).", min=1)
    ] = 33,
    tiled: Annotated[
        bool, typer.Option("--tiled/--untiled", help="Tiled encode/decode (large inputs).")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
) -> None:
    """Reconstruction PSNR/SSIM/perceptual on ImageNet 256², MCL-JCV 33×360×640 and the held-out set."""
    from evaluation.vae_benchmarks import evaluate_vae, write_report
    from evaluation.vae_datasets import DatasetLayoutError

    output_file(out, "--out")
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

"""`videofoundry export-diffusers`: any model reference as a folder diffusers loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import HomeOption, ProfileOption, UserError, app, platform_config
from orchestration.commands.serving import ModelOption


@app.command("export-diffusers")
def export_diffusers(
    out: Annotated[Path, typer.Argument(help="New folder to write (must not exist).")],
    model: ModelOption = None,
    max_shard_gb: Annotated[
        float, typer.Option("--max-shard-gb", min=0.001, help="Split weights above this size into shards.")
    ] = 5.0,
    home: HomeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Write a model as diffusers folders: OUT/transformer (HunyuanVideoTransformer3DModel), OUT/vae
    (AutoencoderKLHunyuanVideo) and OUT/scheduler, loadable with diffusers' `from_pretrained`."""
    from serving import BundleError, ExportError, ModelReferenceError, export_model

    platform = platform_config(home, profile, None)
    try:
        path = export_model(
            model, out, tracking_uri=platform.tracking_uri,
            cache_dir=platform.workspace.serving_cache,
            registered_model=platform.tracking.registered_model, max_shard_bytes=int(max_shard_gb * 2**30),
        )  # fmt: skip
    except (ExportError, ModelReferenceError, BundleError) as error:
        raise UserError(str(error)) from error
    parts = ", ".join(sorted(p.name for p in path.iterdir()))
    typer.echo(f"wrote {path} ({parts}); load with diffusers' from_pretrained({path}/transformer) and /vae")

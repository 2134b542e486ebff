"""`videofoundry demo-corpus`: write the demo corpus (videos + labels.json) into a folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import MAX_SEED, UserError, app


@app.command("demo-corpus")
def demo_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the videos and labels.json into.")],
    seed: Annotated[
        int, typer.Option("--seed", help="Seed: the same seed gives the same corpus.", min=0, max=MAX_SEED)
    ] = 0,
    profile: Annotated[
        str, typer.Option("--profile", help="Corpus size: tiny (~25 videos) or small.")
    ] = "tiny",
    bad_inputs: Annotated[
        bool,
        typer.Option(
            "--bad-inputs", help="Also write awkward files (zero-byte, truncated …) to bad_inputs/."
        ),
    ] = False,
) -> None:
    """Render the demo corpus: real packaged videos plus synthetic shots with known ground truth."""
    from curation.democorpus.bad_inputs import build_bad_inputs
    from curation.democorpus.build import PROFILES, build_demo_corpus
    from curation.democorpus.photo_pool import MediaMissingError

    if profile not in PROFILES:
        raise UserError(f"unknown corpus profile {profile!r}; choose one of {', '.join(sorted(PROFILES))}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {out_dir}: {error.strerror}; choose a writable folder") from error
    if not os.access(out_dir, os.W_OK):
        raise UserError(f"{out_dir} is not writable; choose a writable folder")
    try:
        labels_path = build_demo_corpus(out_dir, seed=seed, profile=profile)
    except MediaMissingError as error:
        raise UserError(str(error)) from error
    typer.echo(f"wrote {labels_path}")
    if bad_inputs:
        manifest = build_bad_inputs(out_dir / "bad_inputs")
        typer.echo(f"wrote {len(manifest)} awkward inputs to {out_dir / 'bad_inputs'}")

"""`videofoundry export-diffusers`: a model reference written as diffusers folders, which serving
still reads as the same model (same video for the same seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from serving import build_tiny_random, generate

diffusers = pytest.importorskip("diffusers")


def test_export_diffusers_writes_loadable_folders_that_serve_the_same_video(tmp_path: Path) -> None:
    out = tmp_path / "hunyuan-diffusers"
    args = ["export-diffusers", str(out), "--model", "tiny-random", "--home", str(tmp_path / "home")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"transformer", "vae", "scheduler", "pipeline.json"}
    transformer = diffusers.HunyuanVideoTransformer3DModel.from_pretrained(out / "transformer")
    ours = build_tiny_random()[0].config
    assert (transformer.config.num_layers, transformer.config.num_single_layers) == (
        ours.depth_double,
        ours.depth_single,
    )
    diffusers.AutoencoderKLHunyuanVideo.from_pretrained(out / "vae")

    settings = {"height": 32, "width": 32, "frames": 5, "steps": 2, "seed": 1}
    exported = generate("a red kite", model=str(out), **settings)
    builtin = generate("a red kite", model="tiny-random", **settings)
    assert np.abs(exported.frames.astype(int) - builtin.frames.astype(int)).max() <= 1

    again = CliRunner().invoke(app, args)  # an existing folder is never overwritten
    assert again.exit_code == 2 and "already exists" in again.stderr

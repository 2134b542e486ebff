"""`videofoundry calibrate-cache` fits the step cache on a model and `generate` uses the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from serving import read_mp4


@pytest.mark.slow
def test_calibrate_then_generate_with_the_calibration(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home"), "--model", "tiny-random"]
    calibration = tmp_path / "cache.json"
    size = ["--height", "32", "--width", "32", "--frames", "5", "--steps", "10"]
    result = CliRunner().invoke(app, ["calibrate-cache", "--out", str(calibration), *size, *home])
    assert result.exit_code == 0, result.output
    data = json.loads(calibration.read_text())
    assert data["pairs"] == 4 * 9 and len(data["rescale"]) == 5  # 4 prompts × (10 - 1) pairs, degree 4
    shares = list(data["computed_share"].values())
    assert all(0 < s <= 1 for s in shares) and shares == sorted(shares, reverse=True)

    out = tmp_path / "cached.mp4"
    args = ["generate", "--prompt", "a red kite", "--out", str(out), *size, "--step-cache", "0.2"]
    result = CliRunner().invoke(app, [*args, "--step-cache-calibration", str(calibration), *home])
    assert result.exit_code == 0, result.output
    meta = read_mp4(out).metadata
    assert meta["step_cache"] == 0.2 and meta["steps_computed"] + meta["steps_skipped"] == 10

    bad = CliRunner().invoke(
        app, ["generate", "--prompt", "x", "--out", str(out), "--sta-window", "3,3", *home]
    )
    assert bad.exit_code == 2 and "give three integers" in bad.stderr

"""benchmarks/model_gpu.py: the inference-step size is an argument (544p by default, 720p for the
issue's anchor), a malformed size is refused before any model is built, and the smoke run writes its
rows into the --out directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "model_gpu.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.slow  # subprocesses importing torch + diffusers: ~20 s on the shared CPU
def test_infer_size_is_checked_and_smoke_rows_land_in_the_out_directory(tmp_path: Path) -> None:
    for bad, why in (
        ("721x1280x129", "multiples of 16"),
        ("720x1280x128", "4k+1"),
        ("720x1280", "HEIGHTxWIDTHxFRAMES"),
    ):
        refused = run("--only", "dit_infer", "--infer-size", bad, "--out", str(tmp_path))
        assert refused.returncode == 2 and "error:" in refused.stderr and bad in refused.stderr
        assert why in refused.stderr and "Traceback" not in refused.stderr
        assert not (tmp_path / "model_gpu.json").exists()  # refused before the first row

    result = run("--smoke", "--only", "dit_infer", "--infer-size", "720x1280x129", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "model_gpu.json").read_text())
    steps = [row for row in rows if row["name"] == "dit_13b_infer_step"]
    assert [row["impl"] for row in steps] == ["diffusers", "ours"]
    # --smoke runs the tiny grid (3x4x6 latent) whatever the size, and says so in the row
    assert all(row["size"] == "3x4x6 latent" and row["s"] > 0 and row["params"] > 0 for row in steps)

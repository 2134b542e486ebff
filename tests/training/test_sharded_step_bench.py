"""benchmarks/sharded_step.py --smoke: every row runs on CPU and sharded steps compute the plain losses (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_smoke_rows(tmp_path: Path):
    out = tmp_path / "rows.json"
    script = REPO / "benchmarks" / "sharded_step.py"
    done = subprocess.run(
        [sys.executable, str(script), "--smoke", "--steps", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["name"]: row for row in json.loads(out.read_text())}
    names = ["plain", "fsdp_full", "plain_ac", "fsdp_full_ac", "plain_long_ac", "fsdp_full_long_ac"]
    assert all("s_per_step" in rows[n] for n in names), rows
    for suffix in ("", "_ac", "_long_ac"):  # same seeds and batch: the sharded step is the same step
        plain, sharded = (
            rows[f"plain{suffix}"]["loss_first_last"],
            rows[f"fsdp_full{suffix}"]["loss_first_last"],
        )
        assert sharded == pytest.approx(plain, rel=1e-4)
        assert rows[f"ratio{suffix}"]["sharded_speed_vs_plain"] > 0

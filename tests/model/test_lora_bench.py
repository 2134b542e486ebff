"""benchmarks/lora_gpu.py --smoke: every row's code path (bf16 resident, FP8 + block swap + offload +
sequence chunks, 720p, I2V) runs on CPU with the tiny preset and writes its JSON rows, with the
peak memory of each phase (live tensor bytes on CPU). `--out` given a directory (the device's $OUT)
writes lora_gpu.json inside it, and --smoke picks a rank the tiny blocks can stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a subprocess importing torch + the repo: ~25 s on the shared CPU
def test_lora_benchmark_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lora_gpu.py"), "--smoke", "--chunk", "16", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {row["name"]: row for row in json.loads((tmp_path / "lora_gpu.json").read_text())}
    assert set(rows) == {"bf16_ckpt_544x960x129", "fp8_swap_544x960x129", "fp8_swap_720x1280x129",
                         "i2v_fp8_swap_720x1280x129", "fp8_ckpt_544x960x129"}  # fmt: skip
    assert all(row["loss_finite"] and row["step_s"] > 0 and row["rank"] == 4 for row in rows.values())
    assert rows["fp8_swap_544x960x129"]["block_swap"] and "time_vs_bf16_ckpt" in rows["fp8_swap_544x960x129"]
    assert rows["i2v_fp8_swap_720x1280x129"]["i2v"] and rows["fp8_swap_720x1280x129"]["video_tokens"] == 36
    assert (
        rows["fp8_swap_720x1280x129"]["ffn_chunk_tokens"] == 16
        and rows["bf16_ckpt_544x960x129"]["ffn_chunk_tokens"] is None
    )
    for row in rows.values():
        assert set(row["phases"]) == {"forward", "backward", "optimizer"}
        assert all(phase["live_peak_gib"] > 0 for phase in row["phases"].values())
    # Swap rows report the host slabs they hold (one 256 MiB slab each at this size); resident rows none.
    swap_row = rows["fp8_swap_544x960x129"]
    assert swap_row["host_weights_gib"] == swap_row["host_activations_gib"] == 0.25
    assert "host_weights_gib" not in rows["bf16_ckpt_544x960x129"]
    assert all(row["host_peak_rss_gib"] > 0.1 and row["host_min_available_gib"] > 0 for row in rows.values())


@pytest.mark.slow  # a subprocess importing torch + the repo
def test_lora_benchmark_refuses_a_rank_below_one(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "lora_gpu.py"), "--smoke", "--rank", "0", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and "error: --rank 0: must be at least 1" in result.stderr
    assert not (tmp_path / "lora_gpu.json").exists()

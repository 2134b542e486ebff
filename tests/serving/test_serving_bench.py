"""benchmarks/serving_gpu.py's CPU smoke mode: the low-memory variant (FP8 + block offload switch +
sequence-chunked blocks + low-memory VAE) and the `--max-vram 24` variant run beside dense on the
tiny preset, stay close to it, and report their phases, fitted switches and what is alive at the
peak of a step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a subprocess importing torch + the repo: 10-50 s on the shared CPU
def test_serving_benchmark_low_memory_variants_smoke(tmp_path: Path) -> None:
    out = tmp_path / "variants.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, str(ROOT / "benchmarks" / "serving_gpu.py"), "--preset", "tiny", "--device", "cpu",
        "--dtype", "float32", "--variants", "low-memory,fit-24", "--sizes", "64x64x9:2", "--no-compile",
        "--ffn-chunk-tokens", "20", "--explain-peak", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    variants = json.loads(out.read_text())["variants"]
    assert set(variants) == {"dense", "low-memory", "fit-24"}
    low = variants["low-memory"]
    assert low["fitted"] == {"fp8": True, "block_offload": True, "cpu_offload": False, "ffn_chunk_tokens": 20,
                             "vae_tile_preset": "low-memory"}  # fmt: skip
    assert low["video_tokens"] == 48 and low["finite"] and 0 < low["latent_rel_err"] < 0.05
    assert set(low["phases"]) == {"text", "denoise", "decode"}
    explained = low["explain_peak"]  # one step under the live-tensor meter, largest tensors first
    assert explained["live_peak_bytes"] >= explained["top"][0]["bytes"] >= explained["top"][-1]["bytes"] > 0
    # The tiny model fits 24 GB as it is: --max-vram changes only the VAE tiles (below 40 GB).
    assert variants["fit-24"]["fitted"]["vae_tile_preset"] == "low-memory"
    assert not variants["fit-24"]["fitted"]["fp8"] and variants["fit-24"]["latent_rel_err"] == 0.0


@pytest.mark.slow  # a subprocess importing torch + the repo: ~10 s on the shared CPU
def test_cache_probe_runs_the_same_steps_with_the_cache_off_and_compares(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, str(ROOT / "benchmarks" / "serving_gpu.py"), "--preset", "tiny", "--device", "cpu",
        "--dtype", "float32", "--variants", "fp8+sta+cache", "--sizes", "64x64x9:2", "--no-compile",
        "--cache-probe", "64x64x9:20", "--out", str(tmp_path),  # a directory: serving_gpu.json inside
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads((tmp_path / "serving_gpu.json").read_text())["variants"]["fp8+sta+cache"]
    probe = row["cache_probe"]
    assert probe["size"] == "64x64x9" and probe["steps"] == 20
    # 20 steps at threshold 0.15: the cache skips some steps but not all, so the cached latents
    # differ from the uncached run's, a little.
    assert 0 < probe["computed_share"] < 1
    assert 0 < probe["latent_rel_err"] < 0.05 and 30 < probe["decoded_psnr_db"] < float("inf")
    assert probe["cached_s"] > 0 and probe["uncached_s"] > 0
    assert probe["speedup"] == pytest.approx(
        probe["uncached_s"] / probe["cached_s"], rel=0.05
    )  # rounded seconds
    estimate = (
        row["text_encode_s"] + 50 * row["steady_s_per_step"] * probe["computed_share"] + row["vae_decode_s"]
    )
    assert row["estimated_50_steps_end_to_end_s"] == pytest.approx(estimate, abs=0.1)


@pytest.mark.slow  # a subprocess importing torch + the repo: ~10 s on the shared CPU
def test_no_baseline_runs_only_the_named_variant_and_measures_its_full_run(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "e2e.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "serving_gpu.py"), "--preset", "tiny", "--device", "cpu",
        "--dtype", "float32", "--variants", "fp8+sta+cache", "--no-baseline", "--sizes", "64x64x9:30",
        "--no-compile", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    variants = json.loads(out.read_text())["variants"]
    assert list(variants) == ["fp8+sta+cache"]  # no dense run first
    row = variants["fp8+sta+cache"]
    assert "latent_rel_err" not in row and "decoded_psnr_db" not in row  # nothing to compare with
    assert row["steps"] == 30 and len(row["seconds_per_step"]) == 30 and 0 < row["steps_computed"] < 30
    measured = row["text_encode_s"] + sum(row["seconds_per_step"]) + row["vae_decode_s"]
    assert row["measured_end_to_end_s"] == pytest.approx(measured, abs=0.1)

    for wrong, says in (
        (["--variants", "dense,fp9"], "unknown fp9"),
        (["--variants", "fp8", "--sizes", "64x64"], "expected HEIGHTxWIDTHxFRAMES"),
        (["--variants", "fp8+sta+cache", "--cache-probe", "64x64x9:0"], "steps must be at least 1"),
        (["--no-baseline"], "--no-baseline applies to --variants runs only"),
    ):
        bad = subprocess.run([*command[:8], *wrong], capture_output=True, text=True, env=env, timeout=300)
        assert bad.returncode == 2 and "error:" in bad.stderr and says in bad.stderr, (wrong, bad.stderr)
        assert "Traceback" not in bad.stderr


@pytest.mark.slow  # a subprocess importing torch + the repo: ~5 s on the shared CPU
def test_a_variant_that_cannot_run_here_is_a_row_and_the_rest_go_on(tmp_path: Path) -> None:
    from model.attention import sage_available

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "v.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "serving_gpu.py"), "--preset", "tiny", "--device", "cpu",
        "--dtype", "float32", "--variants", "sage,fp8", "--sizes", "64x64x9:2", "--no-compile", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    variants = json.loads(out.read_text())["variants"]
    assert list(variants) == ["dense", "sage", "fp8"]
    # On CPU the 8-bit Triton kernel cannot run, installed or not; here it is usually not installed.
    assert "error" in variants["sage"] and "finite" not in variants["sage"]
    if not sage_available():
        assert "needs the sageattention package" in variants["sage"]["error"]
    assert variants["fp8"]["finite"] and 0 < variants["fp8"]["latent_rel_err"] < 0.05

"""Benchmark runner and report with a real (untrained) tiny VAE; `videofoundry eval-vae` end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evaluation.metrics import frame_psnr, psnr
from evaluation.vae_benchmarks import (
    PUBLISHED_TABLE1,
    build_report,
    reconstruct,
    run_benchmark,
    table1_markdown,
)
from model.checkpoints import save_model
from model.vae import CausalVAE3D, VAEConfig


def _tiny_vae() -> CausalVAE3D:
    torch.manual_seed(0)
    return CausalVAE3D(VAEConfig.preset("tiny")).eval()


def test_run_benchmark_averages_per_frame_and_per_image() -> None:
    torch.set_num_threads(1)
    vae = _tiny_vae()
    rng = np.random.default_rng(0)
    clips = [(f"c{i}", rng.integers(0, 256, (5, 16, 24, 3), dtype=np.uint8)) for i in range(2)]
    images = [(f"i{i}", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for i in range(3)]
    video = run_benchmark(vae, "clips", clips)
    expected = np.concatenate([frame_psnr(c, reconstruct(vae, c)) for _, c in clips]).mean()
    assert video.kind == "video" and video.frames == 10 and abs(video.psnr - expected) < 1e-9
    still = run_benchmark(vae, "images", images)
    assert still.kind == "image" and still.count == 3
    assert abs(still.psnr - np.mean([psnr(i, reconstruct(vae, i)) for _, i in images])) < 1e-9
    report = build_report([still], "ckpt", {"latent_channels": 16, "downsample": "4×8×8"})
    lines = report["table1_markdown"].splitlines()
    assert lines[0].startswith("| Model | Downsample Factor |")
    assert sum("(published)" in line for line in lines) == len(PUBLISHED_TABLE1)
    assert "| HunyuanVideo (884-16c-hy) (published) | 4×8×8 | 16 | 33.14 | 35.39 |" in lines
    ours = table1_markdown({"benchmarks": {"imagenet_256": {"psnr": 21.234}}})
    assert "| **VideoFoundry VAE (this run)** | 4×8×8 | 16 | 21.23 | – |" in ours


def test_eval_vae_cli_on_imagenet_fixture(tmp_path: Path) -> None:
    save_model(_tiny_vae(), tmp_path / "vae")
    root = tmp_path / "imagenet" / "n01440764"
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for index in range(2):
        Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(
            root / f"ILSVRC2012_val_{index:08d}.JPEG"
        )
    out = tmp_path / "report.json"
    command = [
        sys.executable, "-c", "from orchestration.cli import main; main()", "eval-vae",
        "--checkpoint", str(tmp_path / "vae"), "--imagenet", str(tmp_path / "imagenet"), "--out", str(out),
        "--heldout-size", "32", "--heldout-frames", "5", "--limit", "2",
    ]  # fmt: skip
    env = {
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PATH": "/usr/bin:/bin",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["benchmarks"]) == {"imagenet_256", "heldout_images", "heldout_clips"}
    assert report["benchmarks"]["imagenet_256"]["count"] == 2
    assert report["benchmarks"]["heldout_clips"]["frames"] == 10
    assert 0 < report["benchmarks"]["imagenet_256"]["psnr"] < 60
    assert out.with_suffix(".md").read_text() == report["table1_markdown"]
    bad = subprocess.run(
        command[:4] + ["--checkpoint", str(tmp_path / "missing"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr

"""GPU run of the VAE trainer: a small VAE on demo-like clips, held-out PSNR and throughput.

Usage (device machine; `DATA` holds clips/*.mp4, heldout/<name>.<ext>, mobilenet_v2-b0353104.pth):
    python3 benchmarks/vae_gpu.py DATA OUT_DIR --seconds 200
A 10-step probe measures the step time; the curriculum (stage split 60/25/15 %, GAN from 50 %) is
sized to fit `--seconds` of training. Writes OUT_DIR/vae_gpu.json and reconstruction samples.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from evaluation.heldout import heldout_clips, heldout_images
from evaluation.metrics import frame_psnr, psnr
from evaluation.vae_benchmarks import reconstruct, run_benchmark
from model.perceptual import MobileNetFeatureDistance
from training.vae.config import CurriculumStage, VAETrainConfig
from training.vae.data import resolve_media_paths
from training.vae.trainer import VAETrainer


def _config(total_steps: int, weights: Path) -> VAETrainConfig:
    s1, s2 = int(total_steps * 0.6), int(total_steps * 0.25)
    s3 = max(1, total_steps - s1 - s2)
    return VAETrainConfig(
        vae_preset="small",
        stages=(
            CurriculumStage(name="128px_9f", steps=max(1, s1), frames=9, height=128, width=128, video_batch=8, image_batch=32),
            CurriculumStage(name="128px_17f", steps=max(1, s2), frames=17, height=128, width=128, video_batch=4, image_batch=32),
            CurriculumStage(name="tiling_finetune", steps=s3, frames=17, height=128, width=128, video_batch=4, image_batch=32,
                            random_tiling=True, tile_size=64, tile_frames=8),
        ),
        lr=6e-4, disc_lr=2e-4, warmup_steps=50, disc_start_step=total_steps // 2, disc_channels=32,
        perceptual_backbone_weights=weights, perceptual_max_frames=4, ema_decay=0.995,
        eval_every=total_steps, sample_every=10**9, checkpoint_every=total_steps, log_every=50,
        heldout_image_size=256, heldout_frames=33, heldout_size=256, heldout_items=7, decode_cache=256,
    )  # fmt: skip


class _Heldout:
    def __init__(self, photos: list[tuple[str, Path]], size: int, frames: int, weights: Path) -> None:
        self.images = heldout_images(size, photos)
        self.clips = heldout_clips(frames, size, size, photos)
        self.metric = MobileNetFeatureDistance(weights)  # on CPU, where the metric's inputs are

    def __call__(self, vae: torch.nn.Module) -> dict[str, float]:
        """In-training: PSNR only (cheap)."""
        start = time.perf_counter()
        image_psnr = [
            psnr(img, reconstruct(vae, img, autocast_dtype=torch.bfloat16)) for _, img in self.images
        ]
        frames = [frame_psnr(c, reconstruct(vae, c, autocast_dtype=torch.bfloat16)) for _, c in self.clips]
        result = {
            "psnr_image": float(np.mean(image_psnr)),
            "psnr_video": float(np.concatenate(frames).mean()),
        }
        print(f"eval {result} in {time.perf_counter() - start:.1f}s", flush=True)
        return result

    def full(self, vae: torch.nn.Module) -> dict[str, float]:
        """Final: PSNR, SSIM and perceptual distance."""
        images = run_benchmark(vae, "heldout_images", self.images, self.metric, autocast_dtype=torch.bfloat16)
        clips = run_benchmark(vae, "heldout_clips", self.clips, self.metric, autocast_dtype=torch.bfloat16)
        return {
            "psnr_image": images.psnr,
            "psnr_video": clips.psnr,
            "ssim_image": images.ssim,
            "ssim_video": clips.ssim,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=200.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.data / "mobilenet_v2-b0353104.pth"
    clips = resolve_media_paths(args.data / "clips")
    photos = sorted((p.stem, p) for p in (args.data / "heldout").iterdir())
    heldout = _Heldout(photos, 256, 33, weights)
    work = Path("/tmp/vae_gpu_ckpt")

    # Probe: step time at stage-1 shapes (includes cuDNN autotuning and data decoding warm-up).
    shutil.rmtree(work, ignore_errors=True)
    probe = VAETrainer(_config(1000, weights), clips, work / "probe")
    for step in range(3):
        probe.train_step(step)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(3, 13):
        probe.train_step(step)
    torch.cuda.synchronize()
    step_time = (time.perf_counter() - start) / 10
    print(f"probe step {step_time:.3f}s", flush=True)
    # Later stages (17 frames, half the clips) and the GAN cost roughly 1.3x stage 1.
    total = max(100, int(args.seconds / (step_time * 1.5)))
    print(f"training {total} steps", flush=True)
    del probe

    config = _config(total, weights)
    trainer = VAETrainer(config, clips, work / "run", evaluator=heldout)
    t0 = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - t0
    print(f"trained {result.steps_done} steps in {train_seconds:.1f}s", flush=True)
    vae = trainer._ema_model()
    eval_start = time.perf_counter()
    final = heldout.full(vae)
    eval_seconds = time.perf_counter() - eval_start
    sample = heldout.clips[0][1]
    np.save(
        args.out / "sample_clip_input_recon.npy",
        np.concatenate([sample, reconstruct(vae, sample, autocast_dtype=torch.bfloat16)], axis=2)[::4],
    )
    report = {
        "device": torch.cuda.get_device_name(),
        "vae_preset": config.vae_preset,
        "vae_parameters": sum(p.numel() for p in vae.parameters()),
        "stages": [s.model_dump() for s in config.stages],
        "probe_step_seconds": step_time,
        "steps": result.steps_done,
        "train_seconds_incl_evals": train_seconds,
        "train_samples_per_second": result.samples_per_second,
        "evals": result.evals,
        "final_heldout_ema": final,
        "heldout": {
            "images": len(heldout.images),
            "clips": len(heldout.clips),
            "clip_shape": list(sample.shape),
        },
        "eval_seconds": eval_seconds,
        "eval_frames_per_second": (len(heldout.images) + sum(len(c) for _, c in heldout.clips))
        / eval_seconds,
        "perceptual": trainer.perceptual.name,
        "precision": trainer.backend.precision,
    }
    (args.out / "vae_gpu.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

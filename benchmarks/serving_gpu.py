"""Seconds per denoising step and peak GPU memory of `serving.Pipeline` for a DiT preset with random weights.

Runs the serving sampler itself (`Pipeline.sample_latents`: embedded guidance, Euler with shift,
batch 1, no real CFG) at each requested size, timing every step with a CUDA sync in the step
callback. Step 1 includes warm-up (kernel selection, allocator growth) and is reported apart.
The text encoder is a random stand-in of the official widths (4096 / 768), so the prompt's real
tokens are few (the DiT trims text padding), as with a short prompt on the released model.

    python benchmarks/serving_gpu.py --preset hunyuan-13b --sizes 544x960x129:3 720x1280x129:2 --out result.json
    python benchmarks/serving_gpu.py --preset tiny --device cpu --sizes 64x64x9:2      # smoke test

Anchors (model issue): diffusers 11.13 s/step at 544×960×129 on one H100 (48 GiB); the released
model 1904 s for 50 steps at 720p on one H100 (38.1 s/step).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from model.bundle import BundleSpec
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.text import TextEncoderConfig, build_text_encoder
from model.vae import CausalVAE3D, VAEConfig
from serving import GenerationSettings, ModelSource, Pipeline, ServingConfig


def build_random_pipeline(preset: str, device: str, dtype: str) -> Pipeline:
    """DiT `preset` + VAE (full 884-16c-hy for the 13B preset, else tiny) with random weights, built on the device."""
    # The paper limits, resident (no offload), without the paper preset's compile and tiling.
    config = ServingConfig(device=device, dtype=dtype, limits=ServingConfig.preset("paper").limits)
    dit_config = DiTConfig.preset(preset)
    vae_config = VAEConfig.preset("884-16c-hy" if preset == "hunyuan-13b" else "tiny")
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    # Build directly in the target dtype on the device: a 13B model in float32 would not fit beside
    # its bf16 copy on one 80 GB GPU, and a CPU init of 13B parameters takes minutes.
    torch.set_default_dtype(config.torch_dtype)
    try:
        with torch.device(config.torch_device):
            transformer = HunyuanDiT(dit_config)
            vae = CausalVAE3D(vae_config)
    finally:
        torch.set_default_dtype(previous)
    text = build_text_encoder(
        TextEncoderConfig(
            kind="tiny-random",
            max_length=256,
            states_dim=dit_config.text_states_dim,
            pooled_dim=dit_config.text_pooled_dim,
        )
    )
    source = ModelSource(f"random:{preset}", None, f"{preset} (random weights)", key=f"random:{preset}")
    return Pipeline(transformer, vae, text, source, BundleSpec(text_encoder="tiny-random"), config)


def measure(pipeline: Pipeline, height: int, width: int, frames: int, steps: int) -> dict[str, Any]:
    """Per-step seconds and peak memory of one sampling run at height × width × frames."""
    GenerationSettings(height=height, width=width, frames=frames, steps=steps, shift=7.0).checked(
        pipeline.config.limits
    )
    cuda = pipeline.device.type == "cuda"
    text = pipeline.encode_text(["A cat walks on the grass, realistic style, the camera follows it slowly."])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    stamps = [time.perf_counter()]

    def on_step(_i: int, _x: torch.Tensor) -> None:
        if cuda:
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    latents = pipeline.sample_latents(
        text, height=height, width=width, frames=frames, steps=steps, shift=7.0, guidance=6.0, cfg_scale=1.0,
        seed=0, callback=on_step,
    )  # fmt: skip
    per_step = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    steady = per_step[1:] or per_step
    t, h, w = latents.shape[2:]
    pt, ph, pw = pipeline.transformer.config.patch_size
    result: dict[str, Any] = {
        "size": f"{height}x{width}x{frames}",
        "latent_shape": list(latents.shape),
        "video_tokens": (t // pt) * (h // ph) * (w // pw),
        "text_tokens": int(text.mask.sum()),
        "steps": steps,
        "seconds_per_step": [round(s, 3) for s in per_step],
        "first_step_s": round(per_step[0], 3),
        "steady_s_per_step": round(sum(steady) / len(steady), 3),
        "estimated_50_steps_s": round(50 * sum(steady) / len(steady), 1),
        "finite": bool(torch.isfinite(latents).all()),
    }
    if cuda:
        result["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="hunyuan-13b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--sizes", nargs="+", default=["544x960x129:3", "720x1280x129:2"], help="HxWxF:steps")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    start = time.perf_counter()
    pipeline = build_random_pipeline(args.preset, args.device, args.dtype)
    params = sum(p.numel() for p in pipeline.transformer.parameters())
    report: dict[str, Any] = {
        "preset": args.preset,
        "dtype": args.dtype,
        "dit_params_b": round(params / 1e9, 3),
        "build_s": round(time.perf_counter() - start, 1),
        "device": torch.cuda.get_device_name() if pipeline.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "runs": [],
    }
    if pipeline.device.type == "cuda":
        report["weights_allocated_gib"] = round(torch.cuda.memory_allocated() / 2**30, 2)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}), flush=True)
    for spec in args.sizes:
        size, _, steps = spec.partition(":")
        height, width, frames = (int(v) for v in size.split("x"))
        run = measure(pipeline, height, width, frames, int(steps or 2))
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

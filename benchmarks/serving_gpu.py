"""Seconds per denoising step and peak GPU memory of `serving.Pipeline` for a DiT preset with random weights.

Runs the serving sampler itself (`Pipeline.sample_latents`: embedded guidance, Euler with shift,
batch 1, no real CFG) at each requested size, timing every step with a CUDA sync in the step
callback. Step 1 includes warm-up (kernel selection, allocator growth) and is reported apart.
The text encoder is a random stand-in of the official widths (4096 / 768), so the prompt's real
tokens are few (the DiT trims text padding), as with a short prompt on the released model.

    python benchmarks/serving_gpu.py --preset hunyuan-13b --sizes 544x960x129:3 720x1280x129:2 --out result.json
    python benchmarks/serving_gpu.py --preset tiny --device cpu --sizes 64x64x9:2      # smoke test

Speed/memory switches (issue 19), each in the same process as the dense bf16 baseline, same seed:

    python benchmarks/serving_gpu.py --variants all --sizes 720x1280x129:3 --cache-probe 544x960x33:50 --out v.json

prints per variant: steady s/step, peak GPU memory (allocated and reserved, per phase: text,
denoise, decode), the switches `--max-vram` fitted (variant fit-24), latent relative error and decoded PSNR (first
latent frames) against dense bf16 after the same steps (random weights: indicative only), and a
50-step end-to-end estimate = text encoding + 50 × s/step × computed share + VAE decode. The
step cache's computed share comes from a 50-step probe run at a smaller size (`--cache-probe`),
which also runs the same 50 steps with the cache off and reports the measured speed-up and the
cache's own fidelity (latent relative error, PSNR of the first decoded frames). Every row also
gives `measured_end_to_end_s`, what its own run took (text + all its steps, the first one compiling,
+ VAE decode). A real 50-step run that cannot share a call with its dense baseline:

    python benchmarks/serving_gpu.py --variants fp8+sta+cache --no-baseline --sizes 720x1280x129:50 --out e2e.json

Anchors (model issue): diffusers 11.13 s/step at 544×960×129 on one H100 (48 GiB); the released
model 1904 s for 50 steps at 720p on one H100 (38.1 s/step).

Measured on one H100 80GB HBM3, torch 2.11.0+cu130, 13B preset with random weights, 2 steps per
variant; "50 steps" is the end-to-end estimate above; the cache's computed share 0.26 comes from the
544×960×33 probe; rel err / PSNR against the same run's dense bf16 (indicative only):

    720×1280×129 (serving_variants_h100.json, three runs, 2026-12-06; their peaks predate freeing
    each variant before the next (aa03cdd), so they include what earlier variants left)
      dense         21.03 s/step 1067 s   34.8 GiB   (compile_blocks; 20.8–21.4 s/step over the runs)
      fp8           20.91 s/step 1061 s   37.5 GiB   rel err 0.0085  46.1 dB
      sta            8.76 s/step  454 s   49.0 GiB   rel err 0.0065  46.7 dB
      fp8+sta        8.24 s/step  428 s   37.5 GiB   rel err 0.0085  46.1 dB
      fp8+sta+cache  8.26 s/step  123 s   41.2 GiB
    544×960×129 (serving_544p_h100.json, two runs on one machine, 2026-12-07, at ce106fa)
      dense          7.36 s/step  377 s   29.5 GiB   (compile_blocks; 8.01 s/step eager, 409 s)
      fp8            7.09 s/step  363 s   18.3 GiB   rel err 0.0085  46.1 dB
      sta            4.80 s/step  248 s   30.3 GiB   rel err 0.0059  46.9 dB
      fp8+sta        4.64 s/step  240 s   18.7 GiB   rel err 0.0082  46.1 dB
      fp8+sta+cache  4.50 s/step   67 s   19.8 GiB
      low-memory     8.43 s/step  430 s    3.9 GiB   rel err 0.0085  46.0 dB  (not compiled)
      fit-24         8.41 s/step  429 s    3.9 GiB   (--max-vram 24 fitted FP8, block + CPU offload,
                                                      8192-token FFN chunks, low-memory VAE tiles)
The step cache skips nothing in two steps, so the cache rows' fidelity is that of fp8+sta. Its own,
over a real 50-step run (serving_cache_probe_h100.json, 2026-12-07, same H100 kind, fp8+sta on
both sides, compiled, same seed): at 544×960×33 the cache computed 13 of 50 steps (share 0.26) and
took 11.24 s against 42.3 s with it off (3.76× measured; 0.26 × 42.3 s = 11.0 s, so the estimate's
arithmetic holds at this size), with latent rel err 0.0095 and 45.8 dB against the uncached run.
No 50-step run at 544×960×129 or 720×1280×129 has been measured: those totals are estimates.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import explain_peak, result_file  # noqa: E402
from model.bundle import BundleSpec  # noqa: E402
from model.dit import HunyuanDiT  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from model.text import TextEncoderConfig, build_text_encoder  # noqa: E402
from model.tile_attention import tile_sparsity  # noqa: E402
from model.vae import CausalVAE3D, VAEConfig  # noqa: E402
from model.vae_tiling import TilingConfig  # noqa: E402
from serving import GenerationSettings, ModelSource, Pipeline, ServingConfig  # noqa: E402


def build_random_pipeline(preset: str, device: str, dtype: str, **switches: Any) -> Pipeline:
    """DiT `preset` + VAE (full 884-16c-hy for the 13B preset, else tiny) with random weights, built
    on the device (the same weights for the same preset: seed 0). `switches` are ServingConfig fields."""
    # The paper limits, resident (no offload), without the paper preset's compile and tiling.
    config = ServingConfig(
        device=device, dtype=dtype, limits=ServingConfig.preset("paper").limits, **switches
    )
    build_device = "cpu" if config.block_offload else config.torch_device  # fit_memory may move it later
    dit_config = DiTConfig.preset(preset)
    vae_config = VAEConfig.preset("884-16c-hy" if preset == "hunyuan-13b" else "tiny")
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    # Build directly in the target dtype on the device: a 13B model in float32 would not fit beside
    # its bf16 copy on one 80 GB GPU, and a CPU init of 13B parameters takes minutes.
    torch.set_default_dtype(config.torch_dtype)
    try:
        with torch.device(config.torch_device):
            vae = CausalVAE3D(vae_config)
            torch.manual_seed(0)
            transformer = HunyuanDiT(dit_config).to(build_device)
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


def measure(
    pipeline: Pipeline, height: int, width: int, frames: int, steps: int, keep: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Per-step seconds and peak memory of one sampling run at height × width × frames (the final
    latents go to `keep["latents"]` when a dict is given)."""
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
    if keep is not None:
        keep["latents"] = latents
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


VARIANTS: dict[str, dict[str, Any]] = {
    "dense-eager": {},
    "dense": {"compile_blocks": True},
    "fp8": {"compile_blocks": True, "fp8": True},
    "sta": {"compile_blocks": True, "sta_window": (3, 3, 5)},
    "fp8+sta": {"compile_blocks": True, "fp8": True, "sta_window": (3, 3, 5)},
    "fp8+sta+cache": {"compile_blocks": True, "fp8": True, "sta_window": (3, 3, 5), "step_cache": 0.15},
    # FP8 weights streamed block by block, blocks chunked over the sequence, small VAE tiles (eager).
    "low-memory": {
        "fp8": True,
        "block_offload": True,
        "ffn_chunk_tokens": 8192,
        "vae_tile_preset": "low-memory",
    },
    # SageAttention's 8-bit kernel (a Triton kernel: eager, compare with dense-eager).
    "sage": {"attention_backend": "sage"},
    # What `--max-vram 24` picks for the paper limits (serving.config.fit_memory).
    "fit-24": {"max_vram_gb": 24.0},
}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) / 2).pow(2).mean())  # pixels in [-1, 1] -> [0, 1]
    return float("inf") if mse == 0 else round(10 * math.log10(1 / mse), 2)


def _decode_seconds(pipeline: Pipeline, latents: torch.Tensor) -> float:
    sync = torch.cuda.synchronize if pipeline.device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    pipeline.decode(latents)
    sync()
    return round(time.perf_counter() - start, 2)


# diffusers' AutoencoderKLHunyuanVideo defaults: 256 px tiles, 16-frame tiles, overlap 0.25.
DIFFUSERS_TILES = TilingConfig(256, 16, 0.25)


def _decode_tilings(pipeline: Pipeline, latents: torch.Tensor, names: str | None) -> dict[str, Any]:
    """Tiled decode seconds and peak memory of `latents` per tiling (like-for-like VAE rows)."""
    out: dict[str, Any] = {}
    for name in (names or "").split(","):
        if not name:
            continue
        tiling = DIFFUSERS_TILES if name == "diffusers" else TilingConfig.preset(name)
        previous, pipeline.vae.tiling = pipeline.vae.tiling, tiling
        if pipeline.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        row: dict[str, Any] = {
            "tiling": dataclasses.asdict(tiling),
            "seconds": _decode_seconds(pipeline, latents),
        }
        if pipeline.device.type == "cuda":
            row["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out[name] = row
        pipeline.vae.tiling = previous
        print(json.dumps({"vae_decode": name, **row}), flush=True)
    return out


def size_arg(text: str) -> str:
    """argparse type of --sizes / --cache-probe: 'HxWxF' or 'HxWxF:steps', positive integers."""
    size, _, steps = text.partition(":")
    parts = size.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts) or not (steps or "1").isdigit():
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected HEIGHTxWIDTHxFRAMES[:STEPS], e.g. 544x960x129:2"
        )
    if int(steps or 1) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: steps must be at least 1")
    return text.lower()


def run_variants(args: argparse.Namespace) -> dict[str, Any]:
    """Each variant of VARIANTS (or those named) against dense bf16 at one size, same seed."""
    names = list(VARIANTS) if args.variants == "all" else args.variants.split(",")
    size, _, steps_text = args.sizes[0].partition(":")
    height, width, frames = (int(v) for v in size.split("x"))
    steps = int(steps_text or 3)
    cuda = args.device.startswith("cuda")
    report: dict[str, Any] = {"size": size, "steps": steps, "variants": {}, "torch": torch.__version__}
    report["device"] = torch.cuda.get_device_name() if cuda else "cpu"
    base = _Baseline()
    order = names if args.no_baseline else ["dense", *[n for n in names if n != "dense"]]
    for name in order:
        switches = dict(VARIANTS[name])
        if args.no_compile:
            switches.pop("compile_blocks", None)
        if args.ffn_chunk_tokens and "ffn_chunk_tokens" in switches:
            switches["ffn_chunk_tokens"] = args.ffn_chunk_tokens
        try:
            _one_variant(args, report, name, switches, (height, width, frames, steps), base)
        except Exception as error:  # one failing variant (a kernel that does not compile) is a row
            report["variants"][name] = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
            print(json.dumps({"variant": name, **report["variants"][name]}), flush=True)
            if name == "dense":
                raise
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))
        if cuda:  # the variant's pipeline sits in reference cycles (hooks): free it before the next
            gc.collect()
            torch.cuda.empty_cache()
    return report


@dataclasses.dataclass
class _Baseline:
    """What later variants are compared with: dense bf16 latents and pixels, decode time per tiling."""

    latents: torch.Tensor | None = None
    pixels: torch.Tensor | None = None
    decode_s: dict[Any, float] = dataclasses.field(default_factory=dict)
    decode_peaks: dict[Any, dict[str, float]] = dataclasses.field(default_factory=dict)


def _reset_peak(pipeline: Pipeline) -> None:
    if pipeline.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peaks(pipeline: Pipeline) -> dict[str, float]:
    """Peak allocated / reserved GPU memory (GiB) since the last `_reset_peak` ({} on CPU)."""
    if pipeline.device.type != "cuda":
        return {}
    torch.cuda.synchronize()
    return {
        "allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
    }


def _one_variant(
    args: argparse.Namespace, report: dict[str, Any], name: str, switches: dict[str, Any],
    size: tuple[int, int, int, int], base: _Baseline,
) -> None:  # fmt: skip
    """One variant's row: speed, memory, fidelity against `base`, end-to-end estimate."""
    height, width, frames, steps = size
    left_over = torch.cuda.memory_allocated() / 2**30 if args.device.startswith("cuda") else 0.0
    pipeline = build_random_pipeline(args.preset, args.device, args.dtype, **switches)
    phases: dict[str, dict[str, float]] = {}
    _reset_peak(pipeline)
    text_start = time.perf_counter()
    pipeline.encode_text(["A cat walks on the grass, realistic style."])
    text_s = round(time.perf_counter() - text_start, 2)
    phases["text"] = _peaks(pipeline)
    keep: dict[str, Any] = {}
    run = measure(pipeline, height, width, frames, steps, keep)
    phases["denoise"] = _peaks(pipeline)
    if (cache := pipeline.transformer.step_cache) is not None:  # of this run's steps (before any probe)
        run["steps_computed"] = cache.stats.computed
    latents = keep["latents"]
    pixels = pipeline.decode(latents[:, :, : min(2, latents.shape[2])]).float().cpu()  # 5 pixel frames
    if not args.no_baseline:  # fidelity against the run's dense bf16 (the first variant)
        if base.latents is None:
            base.latents, base.pixels = latents.float().cpu(), pixels
            report["vae_decode_by_tiling"] = _decode_tilings(pipeline, latents, args.vae_tilings)
        assert base.latents is not None and base.pixels is not None
        run["latent_rel_err"] = round(
            float((latents.float().cpu() - base.latents).norm() / base.latents.norm()), 5
        )
        run["decoded_psnr_db"] = _psnr(pixels, base.pixels)
    run["text_encode_s"] = text_s
    fitted = pipeline.config
    # The decode depends on the VAE tiling (its time) and on what else stays on the GPU (its peak).
    tiling = (fitted.vae_tiling, fitted.tiling, fitted.fp8, fitted.block_offload, fitted.cpu_offload)
    if tiling not in base.decode_s:
        _reset_peak(pipeline)
        base.decode_s[tiling] = _decode_seconds(pipeline, latents)
        base.decode_peaks[tiling] = _peaks(pipeline)
    run["vae_decode_s"] = base.decode_s[tiling]
    phases["decode"] = base.decode_peaks[tiling]
    run["phases"] = phases  # peak GPU memory (GiB) of text encoding, denoising, the full VAE decode
    run["allocated_before_gib"] = round(left_over, 2)  # earlier variants' memory still held (want 0)
    if args.explain_peak:  # one more denoising step under the live-tensor meter
        run["explain_peak"] = explain_peak(
            lambda: measure(pipeline, height, width, frames, 1), pipeline.device.type
        )
    run["fitted"] = {"fp8": fitted.fp8, "block_offload": fitted.block_offload, "cpu_offload": fitted.cpu_offload,
                     "ffn_chunk_tokens": fitted.ffn_chunk_tokens, "vae_tile_preset": fitted.vae_tile_preset}  # fmt: skip
    run["switches"] = {k: list(v) if isinstance(v, tuple) else v for k, v in switches.items()}
    if pipeline.tile_attention is not None:
        grid = (latents.shape[2], latents.shape[3] // 2, latents.shape[4] // 2)
        run["sta_sparsity"] = round(tile_sparsity(grid, pipeline.tile_attention.window), 3)
    share = 1.0
    if switches.get("step_cache") is not None and args.cache_probe:
        probe_size, _, probe_steps = args.cache_probe.partition(":")
        ph, pw, pf = (int(v) for v in probe_size.split("x"))
        run["cache_probe"] = {
            "size": probe_size,
            **_cache_probe(pipeline, (ph, pw, pf, int(probe_steps or 50))),
        }
        share = run["cache_probe"]["computed_share"]
    run["estimated_50_steps_end_to_end_s"] = round(
        text_s + 50 * run["steady_s_per_step"] * share + run["vae_decode_s"], 1
    )
    # What this run itself took for its `steps` steps, first (compiling) step included: with
    # `--sizes HxWxF:50` the measured end-to-end time (the step cache skipping as it decides).
    run["measured_end_to_end_s"] = round(text_s + sum(run["seconds_per_step"]) + run["vae_decode_s"], 1)
    report["variants"][name] = run
    print(json.dumps({"variant": name, **run}), flush=True)


def _cache_probe(pipeline: Pipeline, size: tuple[int, int, int, int]) -> dict[str, Any]:
    """The step cache over a full sampling run: the share of steps it computed, and the same run with
    the cache off (same pipeline, seed and switches otherwise) for the measured speed-up and the
    cache's own fidelity (latent relative error, PSNR of the first decoded frames)."""
    height, width, frames, steps = size
    cache = pipeline.transformer.step_cache
    assert cache is not None
    runs: dict[str, Any] = {}
    for label in ("cached", "uncached"):
        pipeline.transformer.step_cache = cache if label == "cached" else None
        keep: dict[str, Any] = {}
        try:
            row = measure(pipeline, height, width, frames, steps, keep)
        finally:
            pipeline.transformer.step_cache = cache
        latents = keep["latents"].float().cpu()
        pixels = pipeline.decode(keep["latents"][:, :, : min(2, latents.shape[2])]).float().cpu()
        runs[label] = {"seconds": sum(row["seconds_per_step"]), "latents": latents, "pixels": pixels}
    share = cache.stats.computed / (cache.stats.computed + cache.stats.skipped)  # the cached run's
    cached, uncached = runs["cached"], runs["uncached"]
    return {
        "steps": steps,
        "computed_share": round(share, 3),
        "cached_s": round(cached["seconds"], 2),
        "uncached_s": round(uncached["seconds"], 2),
        "speedup": round(uncached["seconds"] / cached["seconds"], 2),
        "latent_rel_err": round(
            float((cached["latents"] - uncached["latents"]).norm() / uncached["latents"].norm()), 5
        ),
        "decoded_psnr_db": _psnr(cached["pixels"], uncached["pixels"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="hunyuan-13b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--sizes", nargs="+", type=size_arg, default=["544x960x129:3", "720x1280x129:2"], help="HxWxF:steps"
    )
    parser.add_argument("--variants", default=None, help=f"'all' or a comma list of {', '.join(VARIANTS)}")
    parser.add_argument(
        "--cache-probe", type=size_arg, default=None, help="HxWxF:steps of the step cache's share probe"
    )
    parser.add_argument("--vae-tilings", default=None, help="e.g. balanced,diffusers: decode rows on dense")
    parser.add_argument(
        "--no-compile", action="store_true", help="variants without compile_blocks (CPU smoke)"
    )
    parser.add_argument(
        "--explain-peak",
        action="store_true",
        help="per variant, one more step: the tensors alive at its peak",
    )
    parser.add_argument(
        "--ffn-chunk-tokens", type=int, default=None, help="tokens per block chunk of the low-memory variant"
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="run only the named variants (no dense bf16 first, no fidelity): e.g. one 50-step "
        "end-to-end run that would not fit one call beside its baseline",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.variants and args.variants != "all":
        unknown = [n for n in args.variants.split(",") if n not in VARIANTS]
        if unknown:
            parser.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    if args.no_baseline and not args.variants:
        parser.error("--no-baseline applies to --variants runs only")
    if args.out:
        args.out = result_file(args.out, "serving_gpu.json")
    if args.variants:
        run_variants(args)
        return

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

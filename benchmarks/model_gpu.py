"""GPU benchmark: our model/ against diffusers 0.42 in the same run, same GPU, bf16 (issue 3).

Measurements (the issue's three, plus a bf16 correctness check at full width):
1. training step (forward + backward) of a 4 dual + 8 single block DiT at width 3072 on a
   33x480x848 video (latent 9x60x106: 14,310 video + 256 text tokens, 40 of them padding);
2. one inference step of the 13B DiT at 544x960x129 (latent 33x68x120: 67,320 + 256 tokens);
3. VAE tiled decode of 129x720x1280 (latent 33x90x160) and encode of 33x360x640.
TFLOP/s use the anchor script's nominal count (S = video + 256 text tokens) for both sides, so the
ratio of TFLOP/s equals the ratio of times; ours really skips the 40 padded text tokens.

Usage (on the device): python benchmarks/model_gpu.py [--only dit_train,dit_infer,vae] [--compile]
    [--infer-size 720x1280x129]
(--compile adds diffusers' regional compile, `compile_repeated_blocks`, beside our `compile_blocks`;
--infer-size sets the inference step's HEIGHTxWIDTHxFRAMES, 544x960x129 by default)
    [--tilings low-memory,balanced,fast,384/32-ncdhw]
Writes $OUT/model_gpu.json (or --out). `--smoke` runs every code path with tiny sizes on CPU.

Measured 2026-11-25 on one H100 80GB HBM3, torch 2.11.0+cu130, diffusers 0.42.1, bf16, each row's
two sides in one run (commands in the model issue's report):
    train step 4x2stream+8x1stream D3072   diffusers 0.680 s 313 TFLOP/s 38.3 GiB | ours 0.512 s 416 TFLOP/s
                                           31.1 GiB 1.33x | ours + compile_blocks 0.431 s 494 TFLOP/s 1.58x
    13B inference step 544x960x129         diffusers 11.35 s 377 TFLOP/s 30.9 GiB | ours 8.27 s 518 TFLOP/s
                                           1.37x | ours + compile_blocks 7.65 s 560 TFLOP/s 29.4 GiB 1.48x
    VAE tiled decode 129x720x1280          diffusers 28.94 s 5.48 GiB | ours "balanced" 12.56 s 5.11 GiB 2.30x,
                                           "low-memory" 15.63 s 3.89 GiB 1.85x, "fast" 10.39 s 7.31 GiB 2.78x,
                                           384 px/32 f 11.56 s 5.69 GiB (13.52 s 5.48 GiB with NCDHW layout)
    VAE encode 33x360x640                  diffusers 0.869 s (tiled) | ours 0.248 s untiled (7.0 GiB) 3.50x,
                                           0.404 s tiled 256 px (2.1 GiB) 2.15x
With random weights, tiled outputs depend strongly on the tiling (ours vs diffusers' tiles differ
by ~0.56 relative even in float32; diffusers' own bf16 vs float32 differ by 0.015), so the VAE rows
time the work; agreement with diffusers is checked untiled on CPU (tests/model/test_parity.py).

Like for like, 2026-12-07, one H100 80GB HBM3, torch 2.11.0+cu130, diffusers 0.42.1, all four rows
in one run of `--only dit_infer --compile` (benchmarks/results/model_gpu_infer_compile_h100.json):
    13B inference step 544x960x129         diffusers 11.16 s | diffusers + compile_repeated_blocks 10.04 s |
                                           ours 8.16 s | ours + compile_blocks 7.53 s: 1.48x eager
                                           diffusers, 1.33x diffusers compiled the same way (regional)
    13B inference step 720x1280x129        diffusers 31.39 s 36.3 GiB | diffusers + compile_repeated_blocks
    (--infer-size, another run, same day)  29.51 s 31.6 GiB | ours 22.00 s 35.6 GiB | ours + compile_blocks
                                           20.96 s 32.9 GiB: 1.50x eager diffusers, 1.41x diffusers compiled
                                           the same way (model_gpu_infer_compile_720p_h100.json)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model.causal_conv as causal_conv  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    RESULTS,
    build,
    dit_flops,
    dit_inputs,
    emit,
    peak_gib,
    reset,
    sync,
    timed,
)
from model.dit import HunyuanDiT, compile_blocks  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from model.keymaps import config_to_diffusers, diffusers_to_official  # noqa: E402
from model.vae import CausalVAE3D, VAEConfig  # noqa: E402
from model.vae_tiling import TilingConfig  # noqa: E402


def bench_dit_train(args: argparse.Namespace, out: Path, dev: str, dtype: torch.dtype) -> None:
    from diffusers import HunyuanVideoTransformer3DModel

    cfg = (
        DiTConfig.preset("tiny", depth_double=1, depth_single=1)
        if args.smoke
        else DiTConfig.preset("bench-4x8")
    )
    grid = (3, 4, 6) if args.smoke else (9, 60, 106)
    s_img = grid[0] * grid[1] * grid[2] // 4
    flops = 3 * dit_flops(cfg.depth_double, cfg.depth_single, s_img, 256, cfg.hidden_size)
    lat, t, states, mask, pooled, guidance = dit_inputs(cfg, grid, dev, dtype)

    ref = build(HunyuanVideoTransformer3DModel, dev, dtype, **config_to_diffusers(cfg))
    ours = build(HunyuanDiT, dev, dtype, cfg)
    ours.load_state_dict(diffusers_to_official(ref.state_dict(), cfg))  # same weights: compare outputs too
    with torch.no_grad():
        ref_out = ref(lat, t, states, mask, pooled, guidance, return_dict=False)[0].float()
        our_out = ours(lat, t, states, mask, pooled, guidance).float()
    err = float((our_out - ref_out).norm() / ref_out.norm())
    emit(
        out,
        "dit_bf16_same_weights_rel_err",
        config=f"{cfg.depth_double}x2stream+{cfg.depth_single}x1stream",
        rel_err=err,
    )
    del ref_out, our_out

    def ref_step() -> None:
        ref(lat, t, states, mask, pooled, guidance, return_dict=False)[0].float().pow(2).mean().backward()

    def our_step() -> None:
        ours(lat, t, states, mask, pooled, guidance).float().pow(2).mean().backward()

    def measure(label: str, model: torch.nn.Module, step: Callable[[], None], **extra: Any) -> None:
        reset()
        seconds = timed(step, warmup=1, iters=3)
        model.zero_grad(set_to_none=True)
        emit(
            out,
            "dit_train_step",
            impl=label,
            s=seconds,
            tflops=flops / seconds / 1e12,
            peak_gib=peak_gib(),
            **extra,
        )

    for label, model, other, step in (("diffusers", ref, ours, ref_step), ("ours", ours, ref, our_step)):
        other.to("cpu")  # peak memory of one model at a time
        measure(label, model, step, S=s_img + 256)
        other.to(dev)
    if args.compile:  # both compiled the same way: each repeated block, torch.compile defaults
        ours.to("cpu")
        ref.compile_repeated_blocks()
        t0 = time.perf_counter()
        ref_step()
        sync()
        measure("diffusers+compile", ref, ref_step, compile_s=time.perf_counter() - t0)
        ours.to(dev)
    ref.to("meta")  # free its memory before our compiled run
    reset()
    if args.compile:
        compile_blocks(ours)
        t0 = time.perf_counter()
        our_step()
        sync()
        measure("ours+compile", ours, our_step, compile_s=time.perf_counter() - t0)


def infer_grid(size: str) -> tuple[int, int, int]:
    """'HxWxF' pixels -> the latent grid (frames 4x and space 8x compressed, causal first frame)."""
    try:
        h, w, f = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--infer-size {size!r}: expected HEIGHTxWIDTHxFRAMES, e.g. 544x960x129") from None
    if min(h, w, f) < 1 or h % 16 or w % 16 or (f - 1) % 4:
        raise ValueError(f"--infer-size {size!r}: height and width must be multiples of 16, frames 4k+1")
    return (f - 1) // 4 + 1, h // 8, w // 8


def bench_dit_infer(args: argparse.Namespace, out: Path, dev: str, dtype: torch.dtype) -> None:
    from diffusers import HunyuanVideoTransformer3DModel

    cfg = DiTConfig.preset("tiny") if args.smoke else DiTConfig.preset("hunyuan-13b")
    grid = (3, 4, 6) if args.smoke else infer_grid(args.infer_size)
    s_img = grid[0] * grid[1] * grid[2] // 4
    flops = dit_flops(cfg.depth_double, cfg.depth_single, s_img, 256, cfg.hidden_size)
    inputs = dit_inputs(cfg, grid, dev, dtype)
    labels = ["diffusers", "ours", *(["diffusers+compile", "ours+compile"] if args.compile else [])]
    for label in labels:
        reset()
        if label.startswith("diffusers"):
            model = build(HunyuanVideoTransformer3DModel, dev, dtype, **config_to_diffusers(cfg)).eval()
            if "compile" in label:  # diffusers' regional compile: each repeated block, default options
                model.compile_repeated_blocks()

            def fwd(model: torch.nn.Module = model) -> None:
                model(*inputs, return_dict=False)

        else:
            model = build(HunyuanDiT, dev, dtype, cfg).eval()
            if "compile" in label:
                compile_blocks(model)

            def fwd(model: torch.nn.Module = model) -> None:
                model(*inputs)

        params = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            seconds = timed(fwd, warmup=1, iters=2)
        emit(
            out,
            "dit_13b_infer_step",
            size="x".join(map(str, grid)) + " latent" if args.smoke else args.infer_size,
            impl=label,
            params=params,
            s=seconds,
            tflops=flops / seconds / 1e12,
            peak_gib=peak_gib(),
        )
        model.to("meta")
        reset()


def bench_vae(args: argparse.Namespace, out: Path, dev: str, dtype: torch.dtype) -> None:
    from diffusers import AutoencoderKLHunyuanVideo

    cfg = VAEConfig.preset("tiny") if args.smoke else VAEConfig.preset("884-16c-hy")
    dec_shape = (1, 16, 5, 12, 20) if args.smoke else (1, 16, 33, 90, 160)
    enc_shape = (1, 3, 9, 48, 80) if args.smoke else (1, 3, 33, 360, 640)
    gen = torch.Generator(device=dev).manual_seed(0)
    z = torch.randn(*dec_shape, device=dev, dtype=dtype, generator=gen)
    video = (torch.rand(*enc_shape, device=dev, generator=gen) * 2 - 1).to(dtype)

    ref = build(
        AutoencoderKLHunyuanVideo,
        dev,
        dtype,
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.norm_groups,
    ).eval()
    ref.enable_tiling()
    ours = build(CausalVAE3D, dev, dtype, cfg).eval()
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        reset()
        seconds = timed(lambda: ref.decode(z), warmup=0, iters=1)
        emit(
            out,
            "vae_tiled_decode_129x720x1280",
            impl="diffusers",
            s=seconds,
            peak_gib=peak_gib(),
            dtype=str(dtype),
        )
        reset()
        seconds = timed(lambda: ref.encode(video), warmup=1, iters=2)
        emit(out, "vae_tiled_encode_33x360x640", impl="diffusers", s=seconds, peak_gib=peak_gib())
        ref_latent = ref.encode(video).latent_dist.mean.float()
        # How far bf16 is from float32 for each implementation (random weights amplify rounding).
        ref_fp32 = ref.float().encode(video.float()).latent_dist.mean
        ours_fp32 = ours.float().encode(video.float(), tiled=True).mean
        emit(
            out,
            "vae_encode_bf16_vs_fp32",
            diffusers_tiled=rel(ref_latent, ref_fp32),
            ours_tiled_fp32_vs_diffusers_fp32=rel(ours_fp32, ref_fp32),
        )
        ours.to(dtype)
        del ref_fp32, ours_fp32
        ref.to("meta")
        reset()

        first: torch.Tensor | None = None
        for spec in ["128/8/2-ncdhw", "128/8/2"] if args.smoke else args.tilings.split(","):
            tiling, chunk = parse_tiling(spec.removesuffix("-ncdhw"))
            causal_conv.CHUNK_FRAMES = chunk
            causal_conv.set_channels_last(False if spec.endswith("-ncdhw") else None)
            reset()
            try:
                seconds = timed(lambda t=tiling: ours.tiled_decode(z, t), warmup=0, iters=1)
                peak = peak_gib()
                decoded = ours.tiled_decode(z, tiling)
                first = decoded if first is None else first
                emit(
                    out,
                    "vae_tiled_decode_129x720x1280",
                    impl="ours",
                    tiling=f"{spec} chunk {chunk}",
                    s=seconds,
                    peak_gib=peak,
                    rel_err_vs_first=rel(decoded, first),
                )
                del decoded
            except torch.OutOfMemoryError:
                emit(out, "vae_tiled_decode_129x720x1280", impl="ours", tiling=spec, error="out of memory")
        del first
        causal_conv.CHUNK_FRAMES = 8
        causal_conv.set_channels_last(None)
        for label, tiled in (("untiled", False), ("tiled-256px", True)):
            reset()
            ours.tiling = TilingConfig(256, 64, overlap=0.25)
            seconds = timed(lambda tiled=tiled: ours.encode(video, tiled=tiled), warmup=1, iters=2)
            latent = ours.encode(video, tiled=tiled).mean.float()
            err = float((latent - ref_latent).norm() / ref_latent.norm())
            emit(
                out,
                "vae_tiled_encode_33x360x640",
                impl="ours",
                mode=label,
                s=seconds,
                peak_gib=peak_gib(),
                rel_err_vs_diffusers_tiled=err,
            )


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def parse_tiling(spec: str) -> tuple[TilingConfig, int]:
    """'fast' (a preset) or 'SIZE/FRAMES[/CHUNK]' -> (tiling, frames per conv chunk).

    SIZE/FRAMES tiles overlap by 64 px (8 latents) in space and one latent frame in time.
    """
    if "/" not in spec:
        return TilingConfig.preset(spec), 8
    size, frames, *chunk = (int(v) for v in spec.split("/"))
    tiling = TilingConfig(
        size, frames, overlap=min(64 / size, 0.25), frame_overlap=min(4 / frames, 0.25), accumulate_fp32=False
    )
    return tiling, chunk[0] if chunk else 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="dit_train,dit_infer,vae")
    parser.add_argument(
        "--compile", action="store_true", help="also time the train step with compiled blocks"
    )
    parser.add_argument(
        "--tilings",
        default="low-memory,fast",
        help="VAE decode tilings to time: preset names or SIZE/FRAMES[/CHUNK] (e.g. 400/36/4); "
        "a '-ncdhw' suffix keeps activations NCDHW (default on CUDA: channels-last-3d)",
    )
    parser.add_argument(
        "--infer-size", default="544x960x129", help="HEIGHTxWIDTHxFRAMES of the dit_infer step"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU, to check the script")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    try:
        infer_grid(args.infer_size)  # a bad size fails before any model is built
    except ValueError as error:
        parser.error(str(error))
    out = Path(args.out) / "model_gpu.json"
    dev = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    dtype = torch.float32 if dev == "cpu" else torch.bfloat16
    name = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
    emit(out, "device", gpu=name, torch=torch.__version__)
    benches = {"dit_train": bench_dit_train, "dit_infer": bench_dit_infer, "vae": bench_vae}
    for key in args.only.split(","):
        try:
            benches[key](args, out, dev, dtype)
        except Exception:  # keep the other measurements; the traceback goes into the JSON
            emit(out, key, error=traceback.format_exc()[-1500:])
            reset()
    summarize()


def summarize() -> None:
    """The closing table: each row against eager diffusers and, for compiled rows, against diffusers
    compiled the same way (regional: each repeated block), so every ratio pairs like with like."""
    print("\nmeasurement | impl | seconds | TFLOP/s | peak GiB | vs diffusers | vs diffusers+compile")
    rows = [r for r in RESULTS if "s" in r and "impl" in r]
    eager = {r["name"]: r["s"] for r in rows if r["impl"] == "diffusers"}
    compiled = {r["name"]: r["s"] for r in rows if r["impl"] == "diffusers+compile"}
    for row in rows:
        ratio = eager.get(row["name"], float("nan")) / row["s"]
        like = (
            f"{compiled[row['name']] / row['s']:.2f}x"
            if "compile" in row["impl"] and row["name"] in compiled
            else "-"
        )
        label = row["impl"] + (
            f" [{row.get('tiling') or row.get('mode')}]" if row.get("tiling") or row.get("mode") else ""
        )
        tflops = f"{row['tflops']:.0f}" if "tflops" in row else "-"
        print(
            f"{row['name']} | {label} | {row['s']:.3f} | {tflops} | {row.get('peak_gib', 0):.1f} | {ratio:.2f}x | {like}"
        )


if __name__ == "__main__":
    main()

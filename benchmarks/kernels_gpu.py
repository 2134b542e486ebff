"""GPU micro-benchmarks of the kernels the model rests on, at the shapes the model issue names.

- SDPA per backend (flash, cuDNN, memory-efficient, PyTorch's own pick) on (1, 24, S, 128) bf16:
  forward at S = 67,576 (13B inference at 544x960x129) and forward + backward at S = 14,566 (the
  training-step benchmark). Decides which backend `model.attention` asks for first on CUDA.
- VAE convolutions (3x3x3, stride 1, bf16, 8 frames: one chunk of the lean inference path) at
  decoder-tile shapes, NCDHW against channels-last-3d, and as frame-stacked channels-last conv2d.
- the bf16 matmul ceiling (8192^3).

Usage (on the device): python benchmarks/kernels_gpu.py  -> table on stdout, $OUT/kernels_gpu.json.

Measured 2026-11-25, one H100 80GB HBM3, torch 2.11.0+cu130, cuDNN 9.19 (TFLOP/s):
    matmul 769
    SDPA fwd S=67,576: PyTorch's pick 593, cuDNN 554, flash 364, efficient 182
    SDPA fwd S=14,566: pick 630, cuDNN 600, flash 311; fwd+bwd: pick 570, cuDNN 566, flash 326
    conv 128->128 @256^2: NCDHW 483, channels-last-3d 705, frames2d 206
    conv 256->256 @256^2: 631 / 792 / 303; 512->512 @128^2: 708 / 800 / 466; 256->128: 516 / 742 / 184
So model.attention leaves SDPA's choice alone, and the VAE's inference path keeps its activations
channels-last-3d on CUDA (model.causal_conv.set_channels_last).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS: list[dict[str, Any]] = []


def timed(fn: Callable[[], object], iters: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def row(**values: Any) -> None:
    ROWS.append(values)
    print(json.dumps(values), flush=True)


def bench_matmul() -> None:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    seconds = timed(lambda: a @ a, iters=20)
    row(kernel="matmul 8192^3", tflops=2 * 8192**3 / seconds / 1e12)


def _sdpa_step(qkv: list[torch.Tensor], backend: SDPBackend | None, backward: bool) -> None:
    q, k, v = qkv
    if backend is None:
        out = F.scaled_dot_product_attention(q, k, v)
    else:
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v)
    if backward:
        out.backward(torch.ones_like(out))


def bench_sdpa() -> None:
    backends = {
        "default": None,
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
    }
    for seq, backward in ((67_576, False), (14_566, False), (14_566, True)):
        shape = (1, 24, seq, 128)
        qkv = [
            torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=backward) for _ in range(3)
        ]
        flops = 4 * seq * seq * 128 * 24 * (3.5 if backward else 1.0)
        for name, backend in backends.items():
            try:
                seconds = timed(partial(_sdpa_step, qkv, backend, backward))
                row(
                    kernel="sdpa",
                    seq=seq,
                    backward=backward,
                    backend=name,
                    ms=seconds * 1e3,
                    tflops=flops / seconds / 1e12,
                )
            except RuntimeError as error:
                row(kernel="sdpa", seq=seq, backward=backward, backend=name, error=str(error)[:200])


def _frames2d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Padded (B, C, T+2, H+2, W+2) -> conv output: three temporal taps as channels of one conv2d."""
    b, c, tp, hp, wp = x.shape
    frames = tp - 2
    stacked = x.permute(0, 2, 3, 4, 1).unfold(1, 3, 1).permute(0, 1, 2, 3, 5, 4)
    stacked = stacked.reshape(b * frames, hp, wp, 3 * c).permute(0, 3, 1, 2)
    w2d = weight.permute(0, 2, 1, 3, 4).reshape(weight.shape[0], 3 * c, 3, 3)
    return F.conv2d(stacked, w2d.contiguous(memory_format=torch.channels_last))


def bench_conv() -> None:
    shapes = [(128, 128, 256), (256, 256, 256), (512, 512, 128), (256, 128, 256)]
    for cin, cout, size in shapes:
        x = torch.randn(1, cin, 10, size + 2, size + 2, device="cuda", dtype=torch.bfloat16)
        weight = torch.randn(cout, cin, 3, 3, 3, device="cuda", dtype=torch.bfloat16) / (27 * cin) ** 0.5
        flops = 2 * 27 * cin * cout * 8 * size * size
        x_cl = x.contiguous(memory_format=torch.channels_last_3d)
        w_cl = weight.contiguous(memory_format=torch.channels_last_3d)
        variants: dict[str, Callable[[], object]] = {
            "ncdhw": partial(F.conv3d, x, weight),
            "channels_last_3d": partial(F.conv3d, x_cl, w_cl),
            "frames2d": partial(_frames2d, x, weight),
        }
        for name, fn in variants.items():
            with torch.no_grad():
                seconds = timed(fn)
            row(
                kernel="conv 3x3x3",
                shape=f"{cin}->{cout} 8x{size}x{size}",
                impl=name,
                ms=seconds * 1e3,
                tflops=flops / seconds / 1e12,
            )


def main() -> None:
    out = Path(os.environ.get("OUT", ".")) / "kernels_gpu.json"
    row(gpu=torch.cuda.get_device_name(), torch=torch.__version__, cudnn=torch.backends.cudnn.version())
    for bench in (bench_matmul, bench_sdpa, bench_conv):
        try:
            bench()
        except Exception as error:  # keep the other measurements
            row(kernel=bench.__name__, error=repr(error)[:500])
        out.write_text(json.dumps(ROWS, indent=1))
    print("\nkernel | shape | variant | ms | TFLOP/s")
    for r in ROWS:
        if "tflops" in r:
            shape = r.get("shape") or (
                f"S={r['seq']}{' fwd+bwd' if r.get('backward') else ''}" if "seq" in r else ""
            )
            print(
                f"{r['kernel']} | {shape} | {r.get('impl') or r.get('backend', '')} | {r.get('ms', 0):.2f} | {r['tflops']:.0f}"
            )


if __name__ == "__main__":
    main()

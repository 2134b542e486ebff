"""GPU benchmark: the sequence-parallel code path at P = 1 against the plain model on one GPU (issue 11).

What it shows: the overhead `parallelize_dit` adds on one device (the all-to-alls and gathers of a
group of one, the token slicing and the per-forward input check), bf16, for
1. a training step (forward + backward, activation checkpointing) of the `bench-4x8` DiT (width
   3072, 4 dual + 8 single blocks) on latent 9x60x106 (14,310 video + 256 text tokens), the same
   workload as benchmarks/model_gpu.py;
2. an inference forward of the same DiT on latent 33x68x120 (544x960x129: 67,320 + 256 tokens).
Each is timed plain, SP (P = 1) and SP without the input check; outputs are compared.
What it cannot show: multi-GPU scaling (needs a machine of several GPUs; run this file's
functions under `training.parallel.launch.spawn_local(..., backend="nccl")` there).

Usage (on the device): python benchmarks/sp_gpu.py [--out PATH]; `--smoke` runs every path with
tiny sizes on CPU (gloo). Writes $OUT/sp_gpu.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.dit import HunyuanDiT  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from training.parallel import parallelize_dit, remove_sequence_parallel  # noqa: E402
from training.parallel.launch import apply_nccl_environment, free_port  # noqa: E402

RESULTS: list[dict[str, Any]] = []


def emit(out: Path, name: str, **values: Any) -> None:
    values["name"] = name
    RESULTS.append(values)
    print(json.dumps(values), flush=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(RESULTS, indent=1))
    os.replace(tmp, out)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], warmup: int, iters: int) -> float:
    """Median seconds of `iters` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def inputs(cfg: DiTConfig, grid: tuple[int, int, int], text: int, device: torch.device, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, cfg.in_channels, *grid, generator=gen).to(device, dtype)
    states = torch.randn(1, text, cfg.text_states_dim, generator=gen).to(device, dtype)
    mask = torch.ones(1, text, dtype=torch.bool, device=device)
    mask[:, text - min(40, text // 4) :] = False  # 40 padded text tokens (at 256), as in model_gpu.py
    pooled = torch.randn(1, cfg.text_pooled_dim, generator=gen).to(device, dtype)
    t = torch.tensor([500.0], device=device)
    guidance = torch.tensor([6000.0], device=device)
    return x, t, states, mask, pooled, guidance


def measure(
    model: HunyuanDiT, args: tuple[torch.Tensor, ...], train: bool, warmup: int, iters: int
) -> dict[str, dict[str, float]]:
    """Seconds and peak memory of plain / SP / SP without input check, plus output agreement."""
    results: dict[str, dict[str, float]] = {}
    outputs: dict[str, torch.Tensor] = {}

    def step() -> torch.Tensor:
        if train:
            model.zero_grad(set_to_none=True)
            out = model(*args)
            out.float().square().mean().backward()
            return out.detach()
        with torch.no_grad():
            return model(*args)

    for mode in ("plain", "sp", "sp_nocheck"):
        remove_sequence_parallel(model)
        if mode != "plain":
            parallelize_dit(model, check_inputs=mode == "sp")
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        seconds = timed(step, warmup, iters)
        outputs[mode] = step().float()
        results[mode] = {"seconds": round(seconds, 4), "peak_gib": round(peak_gib(), 2)}
    remove_sequence_parallel(model)
    for mode in ("sp", "sp_nocheck"):
        ref = outputs["plain"]
        results[mode]["rel_err_vs_plain"] = float((outputs[mode] - ref).norm() / ref.norm())
        results[mode]["overhead_pct"] = round(
            100 * (results[mode]["seconds"] / results["plain"]["seconds"] - 1), 2
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "sp_gpu.json")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes on CPU (gloo) to check the code paths"
    )
    parser.add_argument("--iters", type=int, default=3)
    opts = parser.parse_args()
    opts.out.parent.mkdir(parents=True, exist_ok=True)

    cuda = torch.cuda.is_available() and not opts.smoke
    device = torch.device("cuda:0" if cuda else "cpu")
    apply_nccl_environment()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group(
        "nccl" if cuda else "gloo", rank=0, world_size=1, device_id=device if cuda else None
    )
    if opts.smoke:
        cfg = DiTConfig.preset("tiny")
        train_grid, infer_grid, text, dtype = (3, 6, 8), (4, 8, 8), 12, torch.float32
    else:
        cfg = DiTConfig.preset("bench-4x8")
        train_grid, infer_grid, text, dtype = (9, 60, 106), (33, 68, 120), 256, torch.bfloat16
        torch.backends.cuda.matmul.allow_tf32 = True
    with torch.device(device):
        model = HunyuanDiT(cfg).to(dtype)
    emit(
        opts.out,
        "setup",
        device=torch.cuda.get_device_name(0) if cuda else "cpu",
        torch=torch.__version__,
        params_b=round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        preset="tiny" if opts.smoke else "bench-4x8",
    )

    model.gradient_checkpointing = True
    train_args = inputs(cfg, train_grid, text, device, dtype)
    emit(opts.out, "train_step", grid=train_grid, **measure(model.train(), train_args, True, 1, opts.iters))
    del train_args
    model.gradient_checkpointing = False
    model.eval().requires_grad_(False)
    infer_args = inputs(cfg, infer_grid, text, device, dtype)
    emit(opts.out, "inference_forward", grid=infer_grid, **measure(model, infer_args, False, 1, opts.iters))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

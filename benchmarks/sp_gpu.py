"""GPU benchmark of Ulysses sequence parallelism for the DiT (issue 11).

Modes:
- one GPU (default, `--world 1`): the sequence-parallel code path at P = 1 against the plain model,
  to show what `parallelize_dit` adds on one device (group-of-one all-to-alls and gathers, token
  slicing, the per-forward input check), bf16, for
  1. a training step (forward + backward, activation checkpointing) of `bench-4x8` (width 3072,
     4 dual + 8 single blocks) on latent 9x60x106 (14,310 video + 256 text tokens), the workload of
     benchmarks/model_gpu.py, and
  2. an inference forward of the same DiT on latent 33x68x120 (544x960x129: 67,320 + 256 tokens).
- several GPUs of one host (`--world N`, or `--scaling 1,2,4,8` for a sweep of the same problem):
  N NCCL ranks (NVLink multicast off) run the sequence-parallel DiT (`--preset hunyuan-13b
  --latent 33 90 160` = 720x1280x129) and report inference-forward and training-step (forward +
  backward, no optimizer, weights replicated) time and the largest per-GPU peak memory; the sweep
  adds speed-up t1/tN and efficiency t1/(N tN). `--what infer` skips the training step (13B
  training at 720p needs ~100 GB on one GPU).

Measured 2026-11-25 on one H100 80GB (torch 2.11, bf16, default one-GPU mode): training step
0.727 s plain vs 0.768 s SP (+5.6 %, peak 12.6 vs 12.7 GiB); inference forward 1.750 s vs 1.811 s
(+3.5 %, 18.9 GiB both); SP output bitwise equal to plain at P = 1. The multi-GPU modes have not
run yet (no machine of several GPUs was lent); on CPU they run with `--smoke`.

Usage (on the device): python benchmarks/sp_gpu.py [--world N | --scaling 1,2,4,8] [--out PATH];
`--smoke` runs the same paths with tiny sizes on CPU (gloo ranks). Writes $OUT/sp_gpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import build, dit_inputs, emit, peak_gib, reset, result_file, timed  # noqa: E402
from model.dit import HunyuanDiT  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from training.parallel import parallelize_dit, remove_sequence_parallel  # noqa: E402
from training.parallel.launch import apply_nccl_environment, free_port, spawn_local  # noqa: E402


def make_step(model: HunyuanDiT, args: tuple[torch.Tensor, ...], train: bool) -> Callable[[], torch.Tensor]:
    def step() -> torch.Tensor:
        if train:
            model.zero_grad(set_to_none=True)
            out = model(*args)
            out.float().square().mean().backward()
            return out.detach()
        with torch.no_grad():
            return model(*args)

    return step


def build_dit(preset: str, device: torch.device, dtype: torch.dtype) -> HunyuanDiT:
    torch.manual_seed(0)  # same weights on every rank
    return build(HunyuanDiT, device, dtype, DiTConfig.preset(preset))


def single_gpu_overhead(opts: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> None:
    """Plain vs SP (P = 1) vs SP without the input check, on one device."""
    model = build_dit(opts.preset, device, dtype)
    cfg = model.config
    emit(
        opts.out,
        "setup",
        device=describe(device),
        torch=torch.__version__,
        preset=opts.preset,
        params_b=params_b(model),
    )
    for what, grid in (("train", tuple(opts.train_latent)), ("infer", tuple(opts.latent))):
        if what not in opts.what:
            continue
        train = what == "train"
        model.train(train).requires_grad_(train)
        model.gradient_checkpointing = train
        args = dit_inputs(cfg, grid, device, dtype, opts.text)  # type: ignore[arg-type]
        row: dict[str, Any] = {"grid": grid}
        outputs = {}
        for mode in ("plain", "sp", "sp_nocheck"):
            remove_sequence_parallel(model)
            if mode != "plain":
                parallelize_dit(model, check_inputs=mode == "sp")
            reset()
            step = make_step(model, args, train)
            row[mode] = {
                "seconds": round(timed(step, opts.warmup, opts.iters), 4),
                "peak_gib": round(peak_gib(), 2),
            }
            outputs[mode] = step().float()
        remove_sequence_parallel(model)
        for mode in ("sp", "sp_nocheck"):
            ref = outputs["plain"]
            row[mode]["rel_err_vs_plain"] = float((outputs[mode] - ref).norm() / ref.norm())
            row[mode]["overhead_pct"] = round(100 * (row[mode]["seconds"] / row["plain"]["seconds"] - 1), 2)
        emit(opts.out, "train_step" if train else "inference_forward", **row)
        del args, outputs


def _rank_main(rank: int, world: int, opts: argparse.Namespace, result_path: str) -> None:
    """One rank of a multi-GPU run: SP DiT inference forward and training step; rank 0 writes JSON."""
    cuda = torch.cuda.is_available() and not opts.smoke
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    model = parallelize_dit(build_dit(opts.preset, device, dtype))
    row: dict[str, Any] = {
        "world": world,
        "preset": opts.preset,
        "latent": opts.latent,
        "device": describe(device),
    }
    for what in ("infer", "train"):
        if what not in opts.what:
            continue
        train = what == "train"
        model.train(train).requires_grad_(train)
        model.gradient_checkpointing = train
        args = dit_inputs(model.config, tuple(opts.latent), device, dtype, opts.text)  # type: ignore[arg-type]
        reset()
        try:
            seconds = timed(make_step(model, args, train), opts.warmup, opts.iters)
            failed = 0.0
        except torch.cuda.OutOfMemoryError:
            seconds, failed = float("nan"), 1.0
        stats = torch.tensor([peak_gib(), failed], device=device)
        dist.all_reduce(stats, op=dist.ReduceOp.MAX)
        row[what] = {
            "seconds": round(seconds, 3),
            "max_peak_gib_per_gpu": round(float(stats[0]), 2),
            "oom": bool(stats[1]),
        }
        del args
    if "infer" in row:
        # The released cfg-distilled model makes one DiT forward per Euler step.
        row["infer"]["est_50_steps_s"] = round(50 * row["infer"]["seconds"], 1)
    if rank == 0:
        Path(result_path).write_text(json.dumps(row))


def multi_gpu(opts: argparse.Namespace, worlds: list[int]) -> None:
    backend = "gloo" if opts.smoke or not torch.cuda.is_available() else "nccl"
    if backend == "nccl" and max(worlds) > torch.cuda.device_count():
        raise SystemExit(
            f"--world {max(worlds)} needs that many GPUs; this machine has {torch.cuda.device_count()}"
        )
    rows = {}
    for world in worlds:
        result = opts.out.with_name(f"sp_world{world}.json")
        spawn_local(_rank_main, world, args=(opts, str(result)), backend=backend, timeout_s=opts.timeout)
        rows[world] = json.loads(result.read_text())
        base = rows.get(1)
        for what in ("infer", "train"):
            if base and what in rows[world] and world > 1:
                t1, tn = base[what]["seconds"], rows[world][what]["seconds"]
                rows[world][what]["speedup"] = round(t1 / tn, 3)
                rows[world][what]["efficiency"] = round(t1 / (world * tn), 3)
        emit(opts.out, "sequence_parallel", **rows[world])


def describe(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def params_b(model: torch.nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e9, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "sp_gpu.json")
    parser.add_argument(
        "--world", type=int, default=1, help="GPUs (ranks) of one host; 1 = P=1 overhead check"
    )
    parser.add_argument(
        "--scaling", default="", help="comma-separated world sizes, e.g. 1,2,4,8 (same problem)"
    )
    parser.add_argument(
        "--preset", default=None, help="DiT preset (default bench-4x8 on one GPU, hunyuan-13b on several)"
    )
    parser.add_argument(
        "--latent", type=int, nargs=3, default=None, help="latent T H W (default 33 68 120 / 33 90 160)"
    )
    parser.add_argument("--train-latent", type=int, nargs=3, default=[9, 60, 106])
    parser.add_argument("--text", type=int, default=256)
    parser.add_argument("--what", default="train,infer")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a collective may wait")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes on CPU (gloo) to check the code paths"
    )
    opts = parser.parse_args()
    opts.out = result_file(opts.out, "sp_gpu.json")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    worlds = [int(w) for w in opts.scaling.split(",")] if opts.scaling else [opts.world]
    several = max(worlds) > 1 or bool(opts.scaling)
    opts.preset = opts.preset or ("tiny" if opts.smoke else "hunyuan-13b" if several else "bench-4x8")
    opts.latent = opts.latent or ([4, 8, 8] if opts.smoke else [33, 90, 160] if several else [33, 68, 120])
    if opts.smoke:
        opts.train_latent, opts.text = [3, 6, 8], 12
    apply_nccl_environment()
    if several:
        multi_gpu(opts, worlds)
        return
    cuda = torch.cuda.is_available() and not opts.smoke
    device = torch.device("cuda:0" if cuda else "cpu")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group(
        "nccl" if cuda else "gloo", rank=0, world_size=1, device_id=device if cuda else None
    )
    try:
        single_gpu_overhead(opts, device, torch.bfloat16 if cuda else torch.float32)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

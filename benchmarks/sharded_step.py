"""FSDP2 sharded DiT training steps against plain ones, and MFU with per-block checkpointing (issue 17).

GPU (one H100; the coordinator runs it):

1. `bench-4x8` (width 3072, 4 dual + 8 single blocks) at 14,566 tokens (9x60x106 latent = 14,310
   video + 256 text): one optimizer step of the trainer's loss on the plain backend (bf16 autocast,
   fp32 weights) and on `training.fsdp_backend.FSDPBackend` with full sharding in a one-rank group
   (bf16 MixedPrecisionPolicy), with and without per-block activation checkpointing; the target
   is sharded >= 95% of plain's speed (`ratio` rows).
2. Per-block ("selective") activation checkpointing at 67,576 tokens (544x960x129 frames = latent
   33x68x120 = 67,320 video + 256 text), plain and sharded: TFLOP/s counting model FLOPs only
   (benchmarks.harness.dit_flops, recompute not counted); the target is >= 400 TFLOP/s.

CPU (`--smoke`, what the test runs): the same rows at tiny sizes; `--two-rank` adds FSDP2 full
sharding against DeepSpeed ZeRO-3 on 2 gloo ranks (seconds per step of the tiny DiT; rank 0's
timing; minutes of process start-up).

Usage (device): python benchmarks/sharded_step.py --out $OUT/sharded_step.json
                python benchmarks/sharded_step.py --smoke [--two-rank] --out /tmp/sharded_step.json
Every row is also printed as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.dit_train_gpu import RESULTS, attempt, make_batch, record, run_steps  # noqa: E402
from model.dit import HunyuanDiT  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from training.backends import Backend, OptimizerSettings, make_backend  # noqa: E402
from training.dit.config import DiTTrainConfig  # noqa: E402
from training.dit.loss import flow_matching_loss  # noqa: E402

SHORT_GRID, LONG_GRID, TEXT = (9, 60, 106), (33, 68, 120), 256
SMOKE_GRID, SMOKE_TEXT = (3, 4, 6), 8


def _ratios() -> None:
    """Sharded / plain speed for each row pair that both ran."""
    rows = {r["name"]: r for r in RESULTS if "s_per_step" in r}
    for suffix in ("", "_ac", "_long_ac"):
        plain, sharded = rows.get(f"plain{suffix}"), rows.get(f"fsdp_full{suffix}")
        if plain and sharded:
            record(
                {
                    "name": f"ratio{suffix}",
                    "sharded_speed_vs_plain": plain["s_per_step"] / sharded["s_per_step"],
                },
                OUT[0],
            )


OUT: list[Path] = []


def two_rank_step(rank: int, world: int, kind: str, steps: int, out: str) -> None:
    """One rank of the CPU comparison: `kind` "fsdp_full" or "zero3"; rank 0 writes seconds per step."""
    if kind == "zero3":
        from training.deepspeed_backend import DeepSpeedBackend

        backend: Backend = DeepSpeedBackend(zero_stage=3, precision="fp32")
    else:
        backend = make_backend(None, "fp32", "full")
    cfg = DiTConfig.preset("tiny")
    torch.manual_seed(0)
    stepped = backend.wrap("dit", HunyuanDiT(cfg), OptimizerSettings(1e-4, (0.9, 0.999), 0.0, 1.0))
    batch, train_cfg = make_batch(cfg, SMOKE_GRID, SMOKE_TEXT), DiTTrainConfig.preset("tiny")
    gen = torch.Generator().manual_seed(1)
    model = getattr(stepped, "engine", stepped.module)  # ZeRO-3 gathers through the engine's forward

    def one() -> float:
        terms = flow_matching_loss(model, batch, train_cfg, gen, backend.device, cfg.guidance_embed)
        stepped.step(terms.loss)
        return float(terms.loss.detach())

    one()
    backend.barrier()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    backend.barrier()
    if rank == 0:
        Path(out).write_text(json.dumps({"s_per_step": (time.perf_counter() - start) / steps}))


def _two_rank_rows(steps: int) -> None:
    from training.parallel.launch import spawn_local

    for kind in ("fsdp_full", "zero3"):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "row.json"
            started = time.perf_counter()
            spawn_local(two_rank_step, 2, (kind, steps, str(out)), timeout_s=300)
            row = json.loads(out.read_text())
        record({"name": f"cpu_2_gloo_ranks_{kind}", **row, "launch_s": time.perf_counter() - started}, OUT[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "sharded_step.json")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    parser.add_argument(
        "--two-rank", action="store_true", help="with --smoke: FSDP2 vs ZeRO-3 on 2 gloo ranks"
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    OUT.append(args.out)
    if args.smoke:
        cfg, short, long, text, device, precision = (
            DiTConfig.preset("tiny"),
            SMOKE_GRID,
            (5, 8, 8),
            SMOKE_TEXT,
            "cpu",
            "fp32",
        )
    else:
        cfg, short, long, text, device, precision = (
            DiTConfig.preset("bench-4x8"),
            SHORT_GRID,
            LONG_GRID,
            TEXT,
            "cuda",
            "bf16",
        )
        print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    plain = Backend(device=device, precision=precision)
    sharded = make_backend(None, precision, "full")  # FSDP2 in a one-rank process group
    for name, backend, grid, ckpt in (
        ("plain", plain, short, False),
        ("fsdp_full", sharded, short, False),
        ("plain_ac", plain, short, True),
        ("fsdp_full_ac", sharded, short, True),
        ("plain_long_ac", plain, long, True),
        ("fsdp_full_long_ac", sharded, long, True),
    ):
        attempt(
            name,
            args.out,
            lambda n=name, b=backend, g=grid, c=ckpt: run_steps(n, b, cfg, g, c, args.steps, text),
        )
    _ratios()
    if args.smoke and args.two_rank:
        _two_rank_rows(args.steps)


if __name__ == "__main__":
    main()

"""FSDP2 sharded DiT training steps against plain ones, and MFU with per-block checkpointing (issue 17).

GPU (one H100; the coordinator runs it):

1. `bench-4x8` (width 3072, 4 dual + 8 single blocks) at 14,566 tokens (9x60x106 latent = 14,310
   video + 256 text): one optimizer step of the trainer's loss on the plain backend (bf16 autocast,
   fp32 weights) and on `training.fsdp_backend.FSDPBackend` with full sharding in a one-rank group
   (bf16 MixedPrecisionPolicy), with and without per-block activation checkpointing; the target
   is sharded >= 95% of plain's speed (`ratio` rows).
2. Per-block activation checkpointing at 67,576 tokens (544x960x129 frames = latent 33x68x120 =
   67,320 video + 256 text), plain and sharded, "full" and selective ("save-attention": attention
   outputs kept, the rest rerun; model.recompute): TFLOP/s counting model FLOPs only
   (benchmarks.harness.dit_flops, recompute not counted); the target is >= 400 TFLOP/s.
`--compile` adds every row again with `compile_blocks` (like for like: each ratio pairs rows of
the same compile setting); `--only a,b` runs the named rows.

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
from benchmarks.harness import reset, result_file  # noqa: E402
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
    for suffix in (
        f"{row}{compiled}" for row in ("", "_ac", "_long_ac", "_long_sac") for compiled in ("", "_compiled")
    ):
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


def per_block_memory(preset: str, grid: tuple[int, int, int], text: int, device: str) -> list[dict]:
    """Measured saved-for-backward bytes of one dual and one single block against the planner.

    A model of the preset's width with one block of each kind (bf16 weights, no optimizer): the
    activation bytes are the allocated-memory growth over one training forward, without and with
    per-block checkpointing, set beside `training.memory_plan.activation_elements` x 2 bytes (with
    checkpointing, less the planner's recompute working set, which only exists during backward).
    """
    from training.memory_plan import activation_elements

    rows = []
    for depths in ((1, 0), (0, 1)):
        cfg = DiTConfig.preset(preset, depth_double=depths[0], depth_single=depths[1])
        video = grid[0] * (grid[1] // 2) * (grid[2] // 2)
        batch = make_batch(cfg, grid, text)
        for ckpt in (False, True):
            reset()
            with torch.device(device):
                model = HunyuanDiT(cfg).to(torch.bfloat16 if device == "cuda" else torch.float32)
            model.gradient_checkpointing = ckpt
            dtype = next(model.parameters()).dtype
            x, states, pooled = (
                v.to(device, dtype) for v in (batch.latents, batch.text_states, batch.text_pooled)
            )
            mask = batch.text_mask.to(device)
            t = torch.full((1,), 500.0, device=device, dtype=dtype)
            guidance = torch.full((1,), 6000.0, device=device, dtype=dtype) if cfg.guidance_embed else None
            sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
            sync()
            before = torch.cuda.memory_allocated() if device == "cuda" else 0
            out = model(x, t, states, mask, pooled, guidance)
            sync()
            after = torch.cuda.memory_allocated() if device == "cuda" else 0
            measured = after - before - out.numel() * out.element_size()
            planned = activation_elements(cfg, video, text, checkpointing="full" if ckpt else "none")
            # After the forward a checkpointed model holds only what it saved; the planner's
            # per_block_max is the recompute working set, which exists only during backward.
            elements = planned.total - (planned.per_block_max if ckpt else 0)
            predicted = elements * out.element_size()
            rows.append(
                {
                    "name": f"per_block_{'dual' if depths[0] else 'single'}{'_ac' if ckpt else ''}",
                    "preset": preset,
                    "tokens": video + text,
                    "measured_gib": measured / 2**30,
                    "planned_gib": predicted / 2**30,
                    "measured_over_planned": measured / predicted if predicted else None,
                }
            )
            del out, model
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "sharded_step.json")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    parser.add_argument(
        "--two-rank", action="store_true", help="with --smoke: FSDP2 vs ZeRO-3 on 2 gloo ranks"
    )
    parser.add_argument("--compile", action="store_true", help="also every row with compile_blocks")
    parser.add_argument(
        "--per-block",
        metavar="PRESET",
        help="also measure one block's activations of PRESET against the planner",
    )
    parser.add_argument("--only", help="comma-separated row names to run (default: all)")
    args = parser.parse_args()
    args.out = result_file(args.out, "sharded_step.json")
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
    rows = [
        ("plain", plain, short, False, "full"),
        ("fsdp_full", sharded, short, False, "full"),
        ("plain_ac", plain, short, True, "full"),
        ("fsdp_full_ac", sharded, short, True, "full"),
        ("plain_long_ac", plain, long, True, "full"),
        ("fsdp_full_long_ac", sharded, long, True, "full"),
        ("plain_long_sac", plain, long, True, "save-attention"),
        ("fsdp_full_long_sac", sharded, long, True, "save-attention"),
    ]
    only = set(args.only.split(",")) if args.only else None
    for compiled in (False, True) if args.compile else (False,):
        for name, backend, grid, ckpt, policy in rows:
            name = name + ("_compiled" if compiled else "")
            if only is not None and name not in only:
                continue
            attempt(
                name,
                args.out,
                lambda n=name, b=backend, g=grid, c=ckpt, p=policy, k=compiled: run_steps(
                    n, b, cfg, g, c, args.steps, text, p, k
                ),
            )
    _ratios()
    if args.per_block:
        for row in per_block_memory(args.per_block, long, text, device):
            record(row, args.out)
    if args.smoke and args.two_rank:
        _two_rank_rows(args.steps)


if __name__ == "__main__":
    main()

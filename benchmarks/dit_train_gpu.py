"""GPU benchmark of one DiT training step as `training.dit` runs it (issue 7).

A full optimizer step of the trainer (flow-matching loss on a 33×480×848 clip = latent 9×60×106,
14,310 video + 256 text tokens, B = 1; backward; clip; AdamW; lr schedule) at the model issue's
benchmark config `bench-4x8` (width 3072, 4 dual + 8 single blocks), in bf16 autocast:

1. plain PyTorch (`training.backends.Backend`: fp32 master weights, torch AdamW), with and without
   activation checkpointing;
2. DeepSpeed ZeRO-2 on one GPU (`training.deepspeed_backend`, config from
   `training.deepspeed_config`: bf16 weights, fp32 master in the ZeRO optimizer, torch AdamW);
3. a depth sweep of the full-width model with activation checkpointing (plain backend) until a
   step no longer fits: how far one GPU goes.

TFLOP/s use the anchor convention of benchmarks/model_gpu.py (linear layers + attention over
S = video + 256 text tokens, × 3 for forward + backward; activation-checkpointing recompute is not
counted). Tokens/s count video tokens.

Usage (device): python benchmarks/dit_train_gpu.py [--out $OUT/dit_train_gpu.json] [--sweep 4,6,8,10]
`--smoke` runs every path at tiny sizes on CPU (no DeepSpeed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import dit_flops, reset, result_file  # noqa: E402
from model.dit import HunyuanDiT, compile_blocks  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from training.backends import Backend, OptimizerSettings  # noqa: E402
from training.dit.config import DiTTrainConfig  # noqa: E402
from training.dit.latent_cache import LatentBatch  # noqa: E402
from training.dit.loss import flow_matching_loss  # noqa: E402

RESULTS: list[dict[str, Any]] = []


def make_batch(cfg: DiTConfig, grid: tuple[int, int, int], text_len: int) -> LatentBatch:
    gen = torch.Generator().manual_seed(0)
    return LatentBatch(
        torch.randn(1, cfg.out_channels, *grid, generator=gen),
        torch.randn(1, text_len, cfg.text_states_dim, generator=gen),
        torch.ones(1, text_len, dtype=torch.bool),
        torch.randn(1, cfg.text_pooled_dim, generator=gen),
    )


def run_steps(
    name: str,
    backend: Backend,
    cfg: DiTConfig,
    grid: tuple[int, int, int],
    checkpointing: bool,
    steps: int,
    text_len: int,
    policy: str = "full",
    compile: bool = False,
) -> dict[str, Any]:
    """Build the model on the backend's device, warm up 2 steps, time `steps` steps.

    `policy`: what checkpointed blocks keep (model.recompute); `compile`: regional compile of the
    blocks before the backend wraps them (the trainer's order).
    """
    reset()
    train_cfg = DiTTrainConfig.preset("tiny")
    torch.manual_seed(0)
    with torch.device(backend.device):
        model = HunyuanDiT(cfg)
    model.gradient_checkpointing = checkpointing
    model.checkpoint_policy = policy
    if compile:
        compile_blocks(model)
    n_params = sum(p.numel() for p in model.parameters())
    stepped = backend.wrap("dit", model, OptimizerSettings(1e-4, (0.9, 0.999), 0.0, 1.0))
    batch = make_batch(cfg, grid, text_len)
    gen = torch.Generator().manual_seed(1)
    sync = torch.cuda.synchronize if backend.device.type == "cuda" else (lambda: None)
    losses = []

    def one() -> None:
        with backend.autocast():
            terms = flow_matching_loss(
                stepped.module, batch, train_cfg, gen, backend.device, cfg.guidance_embed
            )
        stepped.step(terms.loss)
        losses.append(float(terms.loss.detach()))

    for _ in range(2):
        one()
    sync()
    if backend.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    sync()
    seconds = (time.perf_counter() - start) / steps
    s_img = grid[0] * (grid[1] // 2) * (grid[2] // 2)
    flops = 3 * dit_flops(cfg.depth_double, cfg.depth_single, s_img, text_len, cfg.hidden_size)
    peak = torch.cuda.max_memory_allocated() / 2**30 if backend.device.type == "cuda" else 0.0
    row = {
        "name": name,
        "depth": [cfg.depth_double, cfg.depth_single],
        "params_b": n_params / 1e9,
        "activation_checkpointing": policy if checkpointing else False,
        "compile_blocks": compile,
        "s_per_step": seconds,
        "video_tokens_per_s": s_img / seconds,
        "tflops": flops / seconds / 1e12,
        "peak_gib": peak,
        "loss_first_last": [losses[0], losses[-1]],
    }
    return row  # the model and optimizer die with this frame; `attempt` then frees the cache


def record(row: dict[str, Any], out: Path) -> None:
    RESULTS.append(row)
    print(json.dumps(row), flush=True)
    out.write_text(json.dumps(RESULTS, indent=2))


def attempt(name: str, out: Path, fn: Any) -> bool:
    try:
        record(fn(), out)
        reset()
        return True
    except torch.cuda.OutOfMemoryError as err:
        record({"name": name, "oom": True, "error": str(err).splitlines()[0][:300]}, out)
    except Exception as err:  # a benchmark row records what failed and goes on with the others
        record(
            {
                "name": name,
                "error": f"{type(err).__name__}: {err}"[:500],
                "trace": traceback.format_exc()[-1500:],
            },
            out,
        )
    reset()
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "dit_train_gpu.json")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--sweep", default="4,6,8,10,12", help="dual-block counts (single = 2×) to try with checkpointing"
    )
    parser.add_argument("--only", default="plain,plain_noac,zero2,sweep")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    args = parser.parse_args()
    args.out = result_file(args.out, "dit_train_gpu.json")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    if args.smoke:
        base, grid, text_len, device, precision = DiTConfig.preset("tiny"), (3, 4, 6), 8, "cpu", "fp32"
    else:
        base, grid, text_len, device, precision = (
            DiTConfig.preset("bench-4x8"),
            (9, 60, 106),
            256,
            "cuda",
            "bf16",
        )
        print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    plain = Backend(device=device, precision=precision)
    if "plain" in only:
        attempt(
            "plain_pytorch_ac",
            args.out,
            lambda: run_steps("plain_pytorch_ac", plain, base, grid, True, args.steps, text_len),
        )
    if "plain_noac" in only:
        attempt(
            "plain_pytorch",
            args.out,
            lambda: run_steps("plain_pytorch", plain, base, grid, False, args.steps, text_len),
        )
    # The sweep runs before DeepSpeed: its engine keeps GPU memory for the rest of the process.
    if "sweep" in only:
        for depth in [int(d) for d in args.sweep.split(",")]:
            cfg = DiTConfig.preset(
                "tiny" if args.smoke else "bench-4x8", depth_double=depth, depth_single=2 * depth
            )
            name = f"sweep_{depth}x{2 * depth}_ac"
            if not attempt(
                name, args.out, lambda c=cfg, n=name: run_steps(n, plain, c, grid, True, 2, text_len)
            ):
                break
    if "zero2" in only and not args.smoke:
        os.environ.update(
            RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29561"
        )
        from training.deepspeed_backend import DeepSpeedBackend

        zero2 = DeepSpeedBackend(2, precision="bf16", torch_adam=True)
        for checkpointing in (True, False):
            name = "deepspeed_zero2" + ("_ac" if checkpointing else "")
            attempt(
                name,
                args.out,
                lambda c=checkpointing, n=name: run_steps(n, zero2, base, grid, c, args.steps, text_len),
            )
    print("\nname | depth | params (B) | s/step | video tok/s | TFLOP/s | peak GiB")
    for row in RESULTS:
        if "s_per_step" in row:
            print(
                f"{row['name']} | {row['depth']} | {row['params_b']:.2f} | {row['s_per_step']:.3f} | "
                f"{row['video_tokens_per_s']:.0f} | {row['tflops']:.0f} | {row['peak_gib']:.1f}"
            )
        else:
            print(f"{row['name']} | {'OOM' if row.get('oom') else row.get('error')}")


if __name__ == "__main__":
    main()

"""GPU benchmark: one rank-64 LoRA training step of the 13B DiT (random weights), low-memory vs resident.

Rows (B = 1, 256 text tokens of which 40 padding, LoRA on attn + mlp, AdamW step included; the model
set up by `training.dit.lora_trainer.setup_lora_model` and the loss by `flow_matching_loss`, as
`videofoundry train-lora` runs them):
- bf16_ckpt_544x960x129     all weights resident in bf16, activation checkpointing (the reference);
- fp8_swap_544x960x129      FP8 e4m3 block weights (torch._scaled_mm), every block swapped from
                            pinned CPU memory with side-stream prefetch, per-block recompute,
                            block inputs offloaded to pinned CPU memory (side-stream copies), blocks
                            chunked over the sequence (--chunk tokens, each MLP chunk a checkpoint);
- fp8_swap_720x1280x129     the same at 720p (118,800 video tokens);
- i2v_fp8_swap_720x1280x129 I2V (token_replace, first latent frame clean, loss on the rest) at 720p;
- fp8_ckpt_544x960x129      FP8 weights resident + checkpointing (no swap), for the breakdown.
Each row: step seconds (median of --iters after --warmup), peak GPU memory (torch max allocated
and max reserved, GiB) over the timed steps and per phase of the last step (forward, backward,
optimizer; `phases`), the loss (finite check), the host memory of the whole row (peak RSS, least
available; a `host_memory` line printed every 10 s, so a run the OOM killer stops shows its trail;
swap rows also the pinned slabs of frozen weights and of offloaded block inputs); swap rows add
their time ratio to the bf16 row when it ran. `setup_peak_gib` is the model build (in bf16 on the
GPU, then quantised and moved to CPU memory), apart from the step.

Usage (on the device): python benchmarks/lora_gpu.py [--only ROW,ROW] [--iters 1] [--warmup 1] [--chunk 8192]
[--cap-gib 24] (the timed steps under a per-process memory limit: an out-of-memory there is the row's error)
Writes $OUT/lora_gpu.json (or --out) row by row. `--smoke`: the same code paths on CPU with the
`tiny` preset at a few latent frames (tests/model/test_lora_bench.py runs it).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import model.fp8 as fp8_module  # noqa: E402
from benchmarks.harness import (  # noqa: E402
    RESULTS,
    HostTrail,
    PhasePeaks,
    build,
    dit_inputs,
    emit,
    explain_peak,
    peak_gib,
    reset,
    result_file,
    timed,
)
from model.block_swap import BlockSwap  # noqa: E402
from model.dit import HunyuanDiT  # noqa: E402
from model.dit_config import DiTConfig  # noqa: E402
from model.lora import LoRASettings  # noqa: E402
from training.dit.latent_cache import LatentBatch  # noqa: E402
from training.dit.lora_trainer import LoRATrainConfig, setup_lora_model  # noqa: E402
from training.dit.loss import flow_matching_loss  # noqa: E402

# Latent grids (T, H, W) of the pixel sizes: T = (129 - 1) / 4 + 1, H, W = pixels / 8.
GRIDS = {"544x960x129": (33, 68, 120), "720x1280x129": (33, 90, 160)}
# name: (size, fp8, block swap + activation offload + sequence chunks, i2v)
ROWS = {
    "bf16_ckpt_544x960x129": ("544x960x129", False, False, False),
    "fp8_swap_544x960x129": ("544x960x129", True, True, False),
    "fp8_swap_720x1280x129": ("720x1280x129", True, True, False),
    "i2v_fp8_swap_720x1280x129": ("720x1280x129", True, True, True),
    "fp8_ckpt_544x960x129": ("544x960x129", True, False, False),
}
SMOKE_GRIDS = {"544x960x129": (3, 4, 6), "720x1280x129": (3, 6, 8)}


def run_row(name: str, args: argparse.Namespace, device: torch.device) -> None:
    """Measure row `name` and write it, with the host memory the whole row took (setup included)."""
    with HostTrail(name) as trail:
        row = measure_row(name, args, device)
    row.update(trail.row())
    reference = next((r for r in RESULTS if r["name"] == "bf16_ckpt_" + row["size"]), None)
    if reference is not None and name != reference["name"]:
        row["time_vs_bf16_ckpt"] = round(row["step_s"] / reference["step_s"], 3)
    emit(args.out, name, **row)


def measure_row(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    size, fp8, swap, i2v = ROWS[name]
    grid = (SMOKE_GRIDS if args.smoke else GRIDS)[size]
    preset = "tiny" if args.smoke else args.preset
    cfg = DiTConfig.preset(preset, image_condition="token_replace" if i2v else None)
    dtype = torch.float32 if args.smoke else torch.bfloat16
    reset()
    model = build(HunyuanDiT, device, dtype, cfg)
    config = LoRATrainConfig(
        lora=LoRASettings(rank=args.rank, targets=("attn", "mlp")), i2v=i2v, gradient_checkpointing=True,
        fp8_base=fp8, block_swap=-1 if swap else 0, offload_activations=swap,
        ffn_chunk_tokens=(args.chunk or None) if swap else None,
    )  # fmt: skip
    params = setup_lora_model(model, config, device)
    model.train()
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    x, _, states, mask, pooled, _ = dit_inputs(
        cfg, grid, "cpu", torch.float32, text=args.text if not args.smoke else 7
    )
    batch = LatentBatch(x, states, mask, pooled)
    setup_gib = peak_gib()
    reset()
    if args.cap_gib and device.type == "cuda":  # the step as on a card of that size (allocator limit)
        total = torch.cuda.get_device_properties(device).total_memory
        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gib * 2**30 / total), index)
    losses: list[float] = []
    phases = PhasePeaks()
    peaks: dict[str, float] = {"allocated_gib": 0.0, "reserved_gib": 0.0}

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        generator = torch.Generator().manual_seed(len(losses))
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            loss = flow_matching_loss(
                model, batch, config, generator, device, cfg.guidance_embed, first_frame_clean=i2v
            ).loss
        phases.mark("forward")
        loss.backward()
        phases.mark("backward")
        optimizer.step()
        losses.append(float(loss.detach()))
        phases.mark("optimizer")
        for row in phases.rows.values():
            for key in peaks:
                peaks[key] = max(peaks[key], row.get(key, 0.0))

    with phases:
        seconds = timed(step, warmup=args.warmup, iters=args.iters)
    tokens = grid[0] * (grid[1] // 2) * (grid[2] // 2)
    row = {
        "preset": preset, "size": size, "video_tokens": tokens, "rank": args.rank, "fp8": fp8, "block_swap": swap,
        "offload_activations": swap, "ffn_chunk_tokens": config.ffn_chunk_tokens, "i2v": i2v,
        "step_s": round(seconds, 3), "peak_gib": peaks["allocated_gib"], "peak_reserved_gib": peaks["reserved_gib"],
        "phases": phases.rows,
        "setup_peak_gib": round(setup_gib, 2), "lora_params": sum(p.numel() for p in params),
        "loss": losses[-1], "loss_finite": all(map(lambda v: v == v and abs(v) != float("inf"), losses)),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cap_gib": args.cap_gib or None,
        "scaled_mm_fallback": fp8_module.SCALED_MM_FAILURES > 0,
    }  # fmt: skip
    swapper = model.block_runner if isinstance(model.block_runner, BlockSwap) else None
    if swapper is not None:  # host memory the swap holds: frozen weights, block inputs (pinned on CUDA)
        row["host_weights_gib"] = round(swapper.weights_host.reserved_bytes / 2**30, 2)
        row["host_activations_gib"] = round(swapper.activations_host.reserved_bytes / 2**30, 2)
    if args.explain_peak:  # one more step under the live-tensor meter: what is alive at its peak
        row["explain_peak"] = explain_peak(step, device.type)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(ROWS), help="comma list of rows")
    parser.add_argument(
        "--rank", type=int, default=None,
        help="LoRA rank (default 64; 4 under --smoke, where rank 64 outweighs the tiny blocks BlockSwap streams)",
    )  # fmt: skip
    parser.add_argument("--preset", default="hunyuan-13b", help="DiT preset (bench-4x8: a quick check)")
    parser.add_argument("--text", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=8192, help="swap rows: tokens per block chunk (0: none)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=1)
    parser.add_argument(
        "--explain-peak", action="store_true", help="one more step: the tensors alive at its peak"
    )
    parser.add_argument(
        "--cap-gib", type=float, default=0.0,
        help="after the model is set up, limit this process's GPU memory to G GiB (the step as on a G GiB card)",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="tiny preset on CPU (code paths only)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "lora_gpu.json")
    args = parser.parse_args()
    args.out = result_file(args.out, "lora_gpu.json")
    if args.rank is None:
        args.rank = 4 if args.smoke else 64
    elif args.rank < 1:
        parser.error(f"--rank {args.rank}: must be at least 1")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device("cpu" if args.smoke else "cuda")
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("lora_gpu.py needs a CUDA device (or --smoke on CPU)")
    failed = False
    for name in args.only.split(","):
        if name not in ROWS:
            sys.exit(f"unknown row {name!r}; rows: {', '.join(ROWS)}")
        try:
            run_row(name, args, device)
        except Exception as error:  # noqa: BLE001 (a row that fails, e.g. out of memory, is reported and the rest run)
            traceback.print_exc()
            emit(args.out, name, error=f"{type(error).__name__}: {str(error).splitlines()[0][:300]}")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

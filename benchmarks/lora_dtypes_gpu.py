"""GPU probe: the dtype of every block input in one LoRA step with an FP8 base under autocast.

Why: `FP8Linear` once returned float32 under autocast, so the 13B LoRA step carried a float32
residual stream (twice the block-input memory on the card and in block swap's pinned copies; the
I2V 720p row's 100 GiB of host memory). `model/fp8.py` now follows autocast's dtype; this probe
shows what CUDA autocast really hands each block, in seconds, on the `tiny` preset: T2V and I2V,
FP8 base, every block swapped, block inputs offloaded, checkpointing (the `lora_gpu.py` swap rows'
settings). Expected after the fix: bfloat16 hidden states into every block.

Usage (on the device): python benchmarks/lora_dtypes_gpu.py [--device cuda] — prints a line per
mode and writes $OUT/lora_dtypes.json (or --out). `--device cpu` runs the same code under CPU
autocast (whose `addcmul` already returns bf16, so only CUDA tells the fix apart).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_flatten

from benchmarks.harness import build, dit_inputs, result_file
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.lora import LoRASettings
from training.dit.latent_cache import LatentBatch
from training.dit.lora_trainer import LoRATrainConfig, setup_lora_model
from training.dit.loss import flow_matching_loss


def probe(device: torch.device, i2v: bool) -> dict[str, Any]:
    """One forward of the loss; the dtypes and shapes of the tensors each block is called with."""
    dit_config = DiTConfig.preset("tiny", image_condition="token_replace" if i2v else None)
    model = build(HunyuanDiT, device, torch.bfloat16, dit_config)
    config = LoRATrainConfig(
        lora=LoRASettings(rank=4, targets=("attn", "mlp")), i2v=i2v, gradient_checkpointing=True,
        fp8_base=True, block_swap=-1, offload_activations=True,
    )  # fmt: skip
    setup_lora_model(model, config, device)
    x, _, states, mask, pooled, _ = dit_inputs(dit_config, (3, 4, 6), "cpu", torch.float32, text=7)
    calls: list[list[tuple[tuple[int, ...], str]]] = []
    runner = model.block_runner

    def recording(block: torch.nn.Module, *args: Any) -> Any:
        leaves, _ = tree_flatten(args)
        calls.append([(tuple(t.shape), str(t.dtype)) for t in leaves if isinstance(t, torch.Tensor)])
        return runner(block, *args)

    model.block_runner = recording
    with torch.autocast(device.type, torch.bfloat16):
        loss = flow_matching_loss(
            model, LatentBatch(x, states, mask, pooled), config, torch.Generator().manual_seed(0), device,
            dit_config.guidance_embed, first_frame_clean=i2v,
        ).loss  # fmt: skip
    doubles = len(model.double_blocks)
    return {
        "mode": "i2v" if i2v else "t2v",
        "loss": float(loss.detach()),
        "first_double": calls[0],
        "last_double": calls[doubles - 1],
        "first_single": calls[doubles],
        "hidden_dtypes": sorted({call[0][1] for call in calls}),
        "offloaded_bytes": getattr(getattr(runner, "activations_host", None), "used_bytes", None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")) / "lora_dtypes.json")
    args = parser.parse_args()
    args.out = result_file(args.out, "lora_dtypes.json")
    rows = [probe(torch.device(args.device), i2v) for i2v in (False, True)]
    for row in rows:
        print(f"{row['mode']}: block hidden-state dtypes {row['hidden_dtypes']}, loss {row['loss']:.4f}, "
              f"first double block called with {row['first_double']}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": args.device, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

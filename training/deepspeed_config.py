"""DeepSpeed engine configs generated from the typed training settings: the one place they are built.

`zero_config(...)` with the defaults below reproduces `infra/deepspeed/zero2.json` / `zero3.json`
key for key (tested), so the deployment files and the trainers cannot drift apart.
`training_config` adds what a run needs on top: the optimizer (AdamW; `torch_adam` selects torch's
implementation, needed on CPU where DeepSpeed's fused Adam is not built), the micro-batch size and
fp16 loss scaling. `training.deepspeed_backend.DeepSpeedBackend` hands it to `deepspeed.initialize`
for both trainers. The learning-rate schedule stays ours (a LambdaLR handed to
`deepspeed.initialize`) so one warm-up implementation serves every backend.
"""

from __future__ import annotations

from typing import Any

BUCKET_BYTES = 500_000_000


def zero_config(
    stage: int,
    micro_batch: int = 1,
    grad_accumulation: int = 1,
    grad_clip: float = 1.0,
    bf16: bool = True,
    overlap_comm: bool = True,
    bucket_size: int = BUCKET_BYTES,
    param_persistence_threshold: int = 1_000_000,
    steps_per_print: int = 100,
) -> dict[str, Any]:
    """The ZeRO-2 / ZeRO-3 config (the `infra/deepspeed` layout)."""
    if stage not in (0, 1, 2, 3):
        raise ValueError(f"ZeRO stage must be 0-3, got {stage}")
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": overlap_comm,
        "contiguous_gradients": True,
        "reduce_bucket_size": bucket_size,
    }
    if stage == 3:
        zero["stage3_prefetch_bucket_size"] = bucket_size
        zero["stage3_param_persistence_threshold"] = param_persistence_threshold
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    else:
        zero["allgather_bucket_size"] = bucket_size
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accumulation,
        "gradient_clipping": grad_clip,
        "bf16": {"enabled": bf16},
        "zero_optimization": zero,
        "steps_per_print": steps_per_print,
        "wall_clock_breakdown": False,
    }


def training_config(
    stage: int,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    grad_clip: float,
    bf16: bool,
    torch_adam: bool,
    micro_batch: int = 1,
    overlap_comm: bool = True,
    fp16: bool = False,
) -> dict[str, Any]:
    """`zero_config` plus the AdamW optimizer block a training run hands to `deepspeed.initialize`.

    With bf16 (or fp16, dynamic loss scaling) DeepSpeed holds half-precision weights and keeps the
    fp32 master copy inside the ZeRO optimizer. On CPU pass bf16=False, torch_adam=True and
    overlap_comm=False (gloo has no separate communication stream to overlap with). Step prints
    are off: the trainers log.
    """
    if bf16 and fp16:
        raise ValueError("choose one of bf16 and fp16")
    config = zero_config(
        stage,
        micro_batch=micro_batch,
        grad_clip=grad_clip,
        bf16=bf16,
        overlap_comm=overlap_comm,
        steps_per_print=1 << 30,
    )
    if fp16:
        config["fp16"] = {"enabled": True, "loss_scale": 0}
    config["optimizer"] = {
        "type": "AdamW",
        "params": {
            "lr": lr,
            "betas": list(betas),
            "weight_decay": weight_decay,
            "torch_adam": torch_adam,
            "adam_w_mode": True,
        },
    }
    return config

"""DeepSpeed ZeRO backend for `training.backends`: one engine per trained module.

Used on every worker of a Ray Train `TorchTrainer` (which has already created the process group:
gloo on CPU, NCCL on GPU); `deepspeed.init_distributed` adopts that group. The optimizer is
DeepSpeed-configured AdamW with `torch_adam: true` (plain torch AdamW: no fused-op compilation, works
on CPU), the ZeRO stage comes from the training config, gradient clipping is DeepSpeed's.
Parameters stay float32 and the trainer's `torch.autocast` supplies mixed precision, so the model
code is identical to the one-process path.

ZeRO stages 0-2 are supported: parameters stay replicated, so rank 0 can write plain safetensors
weights and the EMA; optimizer state (partitioned from stage 1) goes through DeepSpeed's own
checkpoint files, written by every rank into the checkpoint directory (a shared filesystem when
workers span machines). Stage 3 would partition the parameters themselves; the VAE (~250 M
parameters in the paper configuration) does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from training.backends import Backend, LrLambda, SteppedModel, resolve_precision

_TAG = "state"


class _DeepSpeedStepped(SteppedModel):
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.module = engine.module

    def step(self, loss: torch.Tensor) -> float:
        self.engine.backward(loss)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def state_dict(self) -> dict[str, Any]:
        return {}  # lives in DeepSpeed's checkpoint files (see save_sharded)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return None


class DeepSpeedBackend(Backend):
    """ZeRO stage `zero_stage` (0-3) over the current process group.

    Stage 3 partitions the parameters themselves: a trainer that reads whole weights between steps
    (EMA updates, rank-0 exports) must refuse it (`refuse_partitioned_weights`); code that only steps
    the engine (the sequence-parallel ZeRO-3 path) can use it.
    """

    def __init__(self, zero_stage: int, precision: str = "auto") -> None:
        import deepspeed

        if zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"DeepSpeed ZeRO stage {zero_stage} does not exist (0, 1, 2 or 3)")
        use_cuda = torch.cuda.is_available()
        if not use_cuda:
            # The shared-memory collective op needs a compiled extension; CPU runs use plain gloo.
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        deepspeed.init_distributed(dist_backend="nccl" if use_cuda else "gloo")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        if use_cuda:
            local = self.rank % torch.cuda.device_count()
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        self.precision = resolve_precision(precision, self.device)
        self.zero_stage = zero_stage
        self._engines: dict[str, Any] = {}

    def wrap(
        self,
        name: str,
        module: nn.Module,
        lr: float,
        betas: tuple[float, float],
        weight_decay: float,
        lr_lambda: LrLambda,
        grad_clip: float,
    ) -> SteppedModel:
        import deepspeed

        module.to(self.device)
        config = {
            "train_micro_batch_size_per_gpu": 1,  # batches are formed by the trainer, not DeepSpeed
            "gradient_accumulation_steps": 1,
            "gradient_clipping": grad_clip,
            "zero_optimization": {"stage": self.zero_stage},
            "optimizer": {
                "type": "AdamW",
                "params": {"lr": lr, "betas": list(betas), "weight_decay": weight_decay, "torch_adam": True},
            },
            "steps_per_print": 1 << 30,
        }
        engine, _, _, _ = deepspeed.initialize(
            model=module,
            model_parameters=[p for p in module.parameters() if p.requires_grad],
            config=config,
            lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda),
        )
        self._engines[name] = engine
        return _DeepSpeedStepped(engine)

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def save_sharded(self, models: dict[str, SteppedModel], staging: Path) -> bool:
        for name in models:
            self._engines[name].save_checkpoint(str(staging / name), tag=_TAG)
        dist.barrier()
        return True

    def load_sharded(self, models: dict[str, SteppedModel], directory: Path) -> None:
        for name in models:
            self._engines[name].load_checkpoint(
                str(directory / name), tag=_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
            )


def refuse_partitioned_weights(backend: Backend, trainer: str) -> None:
    """Raise if `backend` is ZeRO-3: `trainer` reads whole weights (EMA, export) between steps."""
    if getattr(backend, "zero_stage", None) == 3:
        raise ValueError(
            f"the {trainer} trainer keeps an EMA and exports weights from rank 0, which ZeRO-3's partitioned "
            "parameters do not allow yet; use ZeRO stage 2"
        )

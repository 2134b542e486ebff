"""DeepSpeed ZeRO-1/2 behind the `training.backends.Backend` interface (one process per device).

Rank, world size and the rendezvous come from the environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT), which Ray Train's TorchTrainer, torchrun or a test sets; a process
group that already exists (Ray Train creates one) is reused. On CPU: gloo, fp32, torch's AdamW
(`torch_adam`: DeepSpeed's fused Adam is not built) and DeepSpeed's shared-memory comm op disabled
(it would be JIT-compiled). On CUDA: NCCL, bf16 (DeepSpeed keeps fp32 master weights).

Optimizer and scheduler state live in DeepSpeed's own (ZeRO-partitioned) checkpoint, written by
`save_sharded` into the training checkpoint's `deepspeed/` folder; `SteppedModel.state_dict()` is
empty. Model weights are also in the checkpoint's safetensors (ZeRO-1/2 keep full weights on every
rank). ZeRO-3 is refused for now: it partitions the weights, and the EMA update and the rank-0
export would need them gathered (GatheredParameters) first.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from training.backends import Backend, LrLambda, SteppedModel
from training.dit.deepspeed_config import training_config

DS_TAG = "ds"


def _import_deepspeed() -> Any:
    import deepspeed
    import deepspeed.ops

    if not torch.cuda.is_available():
        # The shm comm op would be JIT-compiled on first use; gloo needs nothing more.
        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
    return deepspeed


class _DeepSpeedStepped(SteppedModel):
    def __init__(self, engine: Any, scheduler: Any) -> None:
        self.engine = engine
        self.module = engine.module
        self.scheduler = scheduler

    def step(self, loss: torch.Tensor) -> float:
        self.engine.backward(loss)
        self.engine.step()  # clip (config gradient_clipping) + optimizer + zero_grad + lr step
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing: the state comes from `DeepSpeedBackend.load_sharded`."""


class DeepSpeedBackend(Backend):
    """ZeRO stage `zero_stage` over the default process group (see module docstring)."""

    def __init__(self, zero_stage: int = 2, precision: str = "auto", torch_adam: bool | None = None) -> None:
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing and not dist.is_initialized():
            raise RuntimeError(
                f"DeepSpeedBackend needs {', '.join(missing)} in the environment (set by Ray Train / torchrun)"
            )
        if zero_stage not in (1, 2):
            # ZeRO-3 partitions the parameters themselves: the trainer's EMA and its safetensors /
            # registry export read full parameters on rank 0, which would need gathering first.
            raise ValueError(
                f"ZeRO stage {zero_stage} is not wired into the DiT trainer (EMA and export need full "
                "weights); use 2. The ZeRO-3 JSON (training.dit.deepspeed_config.zero_config(3)) is ready."
            )
        self.deepspeed = _import_deepspeed()
        cuda = torch.cuda.is_available()
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            self.deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo")
        super().__init__(device=device, precision=precision)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.zero_stage = zero_stage
        self.torch_adam = (not cuda) if torch_adam is None else torch_adam

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
        module.to(self.device)
        config = training_config(
            self.zero_stage,
            lr=lr,
            betas=betas,
            weight_decay=weight_decay,
            grad_clip=grad_clip,
            bf16=self.precision == "bf16",
            torch_adam=self.torch_adam,
            overlap_comm=self.device.type == "cuda",
        )
        engine, _, _, scheduler = self.deepspeed.initialize(
            model=module,
            model_parameters=[p for p in module.parameters() if p.requires_grad],
            config=config,
            lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda),
        )
        return _DeepSpeedStepped(engine, scheduler)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        # bf16: DeepSpeed holds bf16 weights; autocast casts the fp32 inputs and keeps norms in fp32.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            yield

    def barrier(self) -> None:
        dist.barrier()

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        keys = sorted(values)
        tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}

    def save_sharded(self, models: dict[str, SteppedModel], staging: Path) -> bool:
        for name, stepped in models.items():
            assert isinstance(stepped, _DeepSpeedStepped)
            stepped.engine.save_checkpoint(str(staging / name), tag=DS_TAG)
        self.barrier()
        return True

    def load_sharded(self, models: dict[str, SteppedModel], directory: Path) -> None:
        for name, stepped in models.items():
            assert isinstance(stepped, _DeepSpeedStepped)
            loaded, _ = stepped.engine.load_checkpoint(str(directory / name), tag=DS_TAG)
            if loaded is None:
                raise RuntimeError(f"DeepSpeed found no checkpoint '{DS_TAG}' under {directory / name}")

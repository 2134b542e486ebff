"""DeepSpeed ZeRO backend for `training.backends`: one engine per trained module, for both trainers.

Runs on every worker of a Ray Train `TorchTrainer` (which has already created the process group:
gloo on CPU, NCCL on GPU) or on torchrun-style ranks (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT);
`deepspeed.init_distributed` adopts or creates that group. The engine config comes from
`training.deepspeed_config.training_config` (the `infra/deepspeed` layout): on CUDA with bf16,
DeepSpeed holds bf16 weights and keeps the fp32 master copy inside the ZeRO optimizer; on CPU it is
fp32 with torch's AdamW (`torch_adam`: DeepSpeed's fused Adam is not built there) and no comm
overlap. Gradient clipping is DeepSpeed's; the learning-rate schedule is ours (a LambdaLR).

ZeRO stages 0-2 keep parameters replicated, so rank 0 can write plain safetensors weights and the
EMA; optimizer state (partitioned from stage 1) goes through DeepSpeed's own checkpoint files,
written by every rank into the checkpoint's `deepspeed/` folder (a shared filesystem when workers
span machines). Stage 3 partitions the parameters themselves (`partitions_parameters`): the
trainers refuse it because their EMA and export read whole weights; code that only steps the
engine (the sequence-parallel ZeRO-3 test) can use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.backends import OptimizerSettings, ProcessGroupBackend, SteppedModel
from training.deepspeed_config import training_config

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


class DeepSpeedBackend(ProcessGroupBackend):
    """ZeRO stage `zero_stage` (0-3) over the process group; `torch_adam` None: torch's AdamW on CPU only."""

    sharded_state_dir = "deepspeed"

    def __init__(self, zero_stage: int = 2, precision: str = "auto", torch_adam: bool | None = None) -> None:
        import deepspeed

        if zero_stage not in (0, 1, 2, 3):
            raise ValueError(f"DeepSpeed ZeRO stage {zero_stage} does not exist (0, 1, 2 or 3)")
        if not torch.cuda.is_available():
            # The shared-memory collective op needs a compiled extension; CPU runs use plain gloo.
            deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        super().__init__(precision)
        self.zero_stage = zero_stage
        self.partitions_parameters = zero_stage == 3
        self.torch_adam = self.device.type == "cpu" if torch_adam is None else torch_adam
        self._engines: dict[str, Any] = {}

    def _join_process_group(self, backend: str) -> None:
        import deepspeed

        deepspeed.init_distributed(dist_backend=backend)  # adopts an existing torch group

    def wrap(self, name: str, module: nn.Module, optimizer: OptimizerSettings) -> SteppedModel:
        import deepspeed

        module.to(self.device)
        config = training_config(
            self.zero_stage,
            lr=optimizer.lr,
            betas=optimizer.betas,
            weight_decay=optimizer.weight_decay,
            grad_clip=optimizer.grad_clip,
            bf16=self.precision == "bf16",
            fp16=self.precision == "fp16",
            torch_adam=self.torch_adam,
            overlap_comm=self.device.type == "cuda",
        )
        lr_lambda = optimizer.lr_lambda()
        engine, _, _, _ = deepspeed.initialize(
            model=module,
            model_parameters=[p for p in module.parameters() if p.requires_grad],
            config=config,
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda),
        )
        self._engines[name] = engine
        return _DeepSpeedStepped(engine)

    def save_sharded(
        self, models: dict[str, SteppedModel], staging: Path, extra: dict[str, Any] | None = None
    ) -> bool:
        # `extra` stays unused: with whole weights (stages 0-2) the EMA is saved as safetensors.
        for name in models:
            self._engines[name].save_checkpoint(str(staging / name), tag=_TAG)
        self.barrier()
        return True

    def load_sharded(
        self, models: dict[str, SteppedModel], directory: Path, extra: dict[str, Any] | None = None
    ) -> None:
        for name in models:
            self._engines[name].load_checkpoint(
                str(directory / name), tag=_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
            )

"""The shared DeepSpeed backend (`training.deepspeed_backend`) with the DiT's generated config.

Everything about ranks, the process group, collectives and sharded checkpoints is the shared
backend's (also used by the VAE trainer). What differs is the engine config: it comes from
`training.dit.deepspeed_config.training_config`, the layout of `infra/deepspeed/zero2.json`, so on
CUDA DeepSpeed holds bf16 weights and keeps the fp32 master copy inside the ZeRO optimizer (the
shared backend keeps fp32 weights and relies on autocast alone). On CPU: fp32, torch's AdamW
(`torch_adam`: DeepSpeed's fused Adam is not built there), no comm overlap.

Rank and world come from RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun, a test)
or from the process group Ray Train's TorchTrainer already created. The DiT *trainer* refuses
ZeRO-3 for now (`refuse_partitioned_weights`): its EMA update and rank-0 export need whole weights.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

from training.backends import LrLambda, SteppedModel
from training.deepspeed_backend import DeepSpeedBackend as SharedDeepSpeedBackend
from training.deepspeed_backend import _DeepSpeedStepped
from training.dit.deepspeed_config import training_config


class DeepSpeedBackend(SharedDeepSpeedBackend):
    """ZeRO-1/2/3 over the default process group, engines configured by `training_config`."""

    def __init__(self, zero_stage: int = 2, precision: str = "auto", torch_adam: bool | None = None) -> None:
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing and not dist.is_initialized():
            raise RuntimeError(
                f"DeepSpeedBackend needs {', '.join(missing)} in the environment (Ray Train and torchrun set them)"
            )
        super().__init__(zero_stage, precision)
        self.torch_adam = self.device.type == "cpu" if torch_adam is None else torch_adam

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
        config["steps_per_print"] = 1 << 30  # our trainer logs; keep DeepSpeed's step prints quiet
        engine, _, _, _ = deepspeed.initialize(
            model=module,
            model_parameters=[p for p in module.parameters() if p.requires_grad],
            config=config,
            lr_scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda),
        )
        self._engines[name] = engine
        return _DeepSpeedStepped(engine)

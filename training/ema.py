"""Exponential moving average of a model's parameters (buffers are copied), for VAE and DiT.

`update()` after each optimizer step: ema ← decay·ema + (1 − decay)·param, in float32, with the
decay warmed up as min(decay, (1 + n) / (10 + n)) so early averages are not dominated by the
random initialisation. `state_dict()` has the model's own keys, so it loads into the model.

Built from a model whose parameters are DTensor shards (training.fsdp_backend), the shadow holds
DTensor shards with the same placements: each rank averages only its shard, and whole weights come
from `Backend.full_state_dict(ema.state_dict())`. `load_state_dict` accepts whole tensors there too
(each rank keeps its shard of them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor


class EMA:
    """Shadow float32 copy of `model`'s parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().float().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        params = dict(model.named_parameters())
        averaged: list[tuple[torch.Tensor, torch.Tensor]] = []
        for key, value in model.state_dict().items():
            shadow = self.shadow[key]
            if key in params and value.dtype.is_floating_point:
                averaged.append((shadow, value.detach().float().to(shadow.device)))
            else:
                shadow.copy_(value.detach())
        if averaged and not any(isinstance(s, DTensor) for s, _ in averaged):
            # One fused kernel per tensor group instead of two launches per parameter.
            shadows, values = (list(t) for t in zip(*averaged, strict=True))
            torch._foreach_lerp_(shadows, values, 1.0 - decay)
        else:
            for shadow, value in averaged:
                shadow.mul_(decay).add_(value, alpha=1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise KeyError(f"EMA state lacks {len(missing)} keys, e.g. {sorted(missing)[0]}")
        for key, value in state.items():
            shadow = self.shadow[key]
            if isinstance(shadow, DTensor) and not isinstance(value, DTensor):
                value = distribute_tensor(value.to(shadow.device), shadow.device_mesh, shadow.placements)
            shadow.copy_(value)
        self.updates = updates

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (cast to its dtypes)."""
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})

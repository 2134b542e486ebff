"""How a trainer's models step: one process (CPU / one GPU) or DeepSpeed ZeRO (under Ray Train).

The trainer code is the same for both; it sees a `Backend` that owns rank/world/device, autocast,
collectives, and wraps each (module, optimizer, schedule) into a `SteppedModel` whose `step(loss)`
does backward, clipping, optimizer and scheduler step. Optimizer state lives inside the backend:
`LocalBackend` returns it as plain state dicts (saved in `trainer_state.pt`); `DeepSpeedBackend`
writes DeepSpeed's own (possibly ZeRO-partitioned) checkpoint into the checkpoint directory.

Mixed precision: "bf16" → torch.autocast(bfloat16), fp32 master weights, no loss scaling;
"fp16" → autocast(float16) + GradScaler (local backend); "fp32" → no autocast. "auto" picks bf16 on
CUDA and fp32 on CPU (CPU bf16 autocast is slower than fp32 on most CPUs and changes numerics).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

LrLambda = Callable[[int], float]


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision in ("bf16", "fp16") and device.type == "cpu":
        raise ValueError(f"mixed precision {precision!r} is for CUDA; use fp32 (or auto) on CPU")
    return precision


class SteppedModel:
    """A module with its optimizer: `step(loss)` = backward + clip + step + zero_grad + lr step."""

    module: nn.Module

    def step(self, loss: torch.Tensor) -> float:
        """Apply one optimizer step from `loss`; returns the pre-clip gradient norm."""
        raise NotImplementedError

    def lr(self) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Optimizer / scheduler / scaler state kept in `trainer_state.pt` (empty when sharded)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class _LocalStepped(SteppedModel):
    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        lr_lambda: LrLambda,
        grad_clip: float,
        precision: str,
    ) -> None:
        self.module = module
        self.optimizer = optimizer
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
        self.grad_clip = grad_clip
        device_type = next(module.parameters()).device.type
        self.scaler = torch.amp.GradScaler(device_type, enabled=precision == "fp16")

    def step(self, loss: torch.Tensor) -> float:
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.module.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip > 0 else float("inf"))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return float(norm)

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


class Backend:
    """One process on `device` (the default): no collectives, world size 1."""

    rank = 0
    world_size = 1

    def __init__(self, device: torch.device | str | None = None, precision: str = "auto") -> None:
        self.device = (
            torch.device(device)
            if device is not None
            else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.precision = resolve_precision(precision, self.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            yield

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
        optimizer = torch.optim.AdamW(module.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
        return _LocalStepped(module, optimizer, lr_lambda, grad_clip, self.precision)

    def barrier(self) -> None:
        """Wait for all ranks (no-op in one process)."""

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average metric values over ranks (identity in one process)."""
        return values

    def save_sharded(self, models: dict[str, SteppedModel], staging: Path) -> bool:
        """Collective: write backend-owned state into `staging`; False when there is none."""
        return False

    def load_sharded(self, models: dict[str, SteppedModel], directory: Path) -> None:
        """Collective: read what `save_sharded` wrote."""

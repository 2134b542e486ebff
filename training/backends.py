"""How a trainer's models step: one process, data parallel (DDP) or DeepSpeed ZeRO.

Both trainers (VAE, DiT) are written against `Backend`: it owns rank/world/device, autocast and
the collectives the loop needs, and `wrap(name, module, optimizer)` turns a module into a
`SteppedModel` whose `step(loss)` does backward, gradient averaging (DDP), clipping, the AdamW
step and the learning-rate step. Implementations:

    Backend           one process on one device (CPU or one GPU); the default
    DDPBackend        N processes of the current process group; gradients averaged over ranks
    DeepSpeedBackend  ZeRO stage 0-3 (training.deepspeed_backend)
    FSDPBackend       FSDP2 `fully_shard`, sharding "zero2" or "full" (training.fsdp_backend)

`make_backend` picks one for the process it runs in (the launcher calls it on every worker).
A backend that `partitions_parameters` holds only shards of each weight between steps; the
trainers accept it when it also `gathers_full_weights` (FSDP2: EMA shards, exports gathered with
`full_state_dict`) and refuse it otherwise (DeepSpeed ZeRO-3).

Sequence parallelism (`use_sequence_parallel(k)`, or FSDPBackend's 2-D mesh): ranks come in groups
of k consecutive ranks that read the same batch; `data_rank` numbers the groups and is what data
and noise are seeded by, `sequence_group` is the group `training.parallel.parallelize_dit` takes.

Optimizer state lives with the backend: `Backend` and `DDPBackend` return it as plain state dicts
(saved in `trainer_state.pt`); `DeepSpeedBackend` writes DeepSpeed's own (ZeRO-partitioned) files
into the checkpoint's `sharded_state_dir` (training.checkpointing.save_training_checkpoint).

Mixed precision: "bf16" → torch.autocast(bfloat16), no loss scaling; "fp16" → autocast(float16) +
GradScaler; "fp32" → no autocast. "auto" picks bf16 on CUDA and fp32 on CPU (CPU bf16 autocast is
slower than fp32 on most CPUs and changes numerics).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

LrLambda = Callable[[int], float]
_PROCESS_GROUP_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' → bf16 on CUDA, fp32 on CPU; bf16/fp16 on CPU is refused."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision in ("bf16", "fp16") and device.type == "cpu":
        raise ValueError(f"mixed precision {precision!r} is for CUDA; use fp32 (or auto) on CPU")
    return precision


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Learning-rate factor of 0-based step `step`: linear from 1/warmup to 1, then constant."""
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def cosine_factor(step: int, warmup_steps: int, decay_steps: int, final: float) -> float:
    """`warmup_factor` times a half cosine from 1 at step 0 to `final` at `decay_steps` (held after);
    `decay_steps=0` leaves the rate constant after the warm-up."""
    if decay_steps <= 0:
        return warmup_factor(step, warmup_steps)
    progress = min(step, decay_steps) / decay_steps
    return warmup_factor(step, warmup_steps) * (
        final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    )


@dataclass(frozen=True)
class OptimizerSettings:
    """AdamW for one module: peak `lr`, linear warm-up over `warmup_steps`, global-norm clip (0: off),
    and with `decay_steps` a cosine decay to `final_lr_fraction`·lr at that step."""

    lr: float
    betas: tuple[float, float]
    weight_decay: float
    grad_clip: float
    warmup_steps: int = 0
    decay_steps: int = 0
    final_lr_fraction: float = 0.0

    def lr_lambda(self) -> LrLambda:
        """The LambdaLR factor function (a plain function, so LambdaLR's state dict stays empty)."""
        warmup, decay, final = self.warmup_steps, self.decay_steps, self.final_lr_fraction
        return lambda step: cosine_factor(step, warmup, decay, final)


class SteppedModel:
    """A module with its optimizer: `step(loss)` = backward + clip + step + zero_grad + lr step."""

    module: nn.Module

    def step(self, loss: torch.Tensor) -> float:
        """Apply one optimizer step from `loss`; returns the pre-clip global gradient norm."""
        raise NotImplementedError

    def lr(self) -> float:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Optimizer / scheduler / scaler state kept in `trainer_state.pt` (empty when sharded)."""
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class _TorchStepped(SteppedModel):
    """torch AdamW + LambdaLR + GradScaler; with `average_gradients`, grads are all-reduced first."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: OptimizerSettings,
        precision: str,
        average_gradients: Callable[[list[nn.Parameter]], None] | None = None,
    ) -> None:
        self.module = module
        self.optimizer = torch.optim.AdamW(
            module.parameters(), lr=optimizer.lr, betas=optimizer.betas, weight_decay=optimizer.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, optimizer.lr_lambda())
        self.grad_clip = optimizer.grad_clip
        self.average_gradients = average_gradients
        device_type = next(module.parameters()).device.type
        self.scaler = torch.amp.GradScaler(device_type, enabled=precision == "fp16")

    def step(self, loss: torch.Tensor) -> float:
        self.scaler.scale(loss).backward()
        params = [p for p in self.module.parameters() if p.requires_grad]
        if self.average_gradients is not None:
            self.average_gradients(params)
        self.scaler.unscale_(self.optimizer)
        params = [p for p in params if p.grad is not None]
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
    """One process on `device` (default: CUDA if present): no collectives, world size 1."""

    rank = 0
    world_size = 1
    partitions_parameters = False  # True where a rank holds only a shard of each weight (ZeRO-3, FSDP)
    gathers_full_weights = False  # partitioned, but `full_state_dict` gathers whole weights (FSDP)
    sharded_state_dir: str | None = None  # the checkpoint sub-folder of backend-written optimizer state
    sequence_parallel = 1
    sequence_group: Any = None  # the ProcessGroup of this rank's sequence-parallel group
    # Called by every rank after each training checkpoint with ({"step", "loss"}, path on rank 0);
    # the Ray Train launcher sets it to `ray.train.report` (training.launch).
    checkpoint_reporter: Callable[[dict[str, Any], Path | None], None] | None = None

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

    @property
    def data_rank(self) -> int:
        """Which data replica this rank is (ranks of one sequence group share it)."""
        return self.rank // self.sequence_parallel

    @property
    def data_world(self) -> int:
        return self.world_size // self.sequence_parallel

    def full_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Whole tensors of `state` (collective where weights are sharded; here they already are whole)."""
        return state

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
            yield

    def wrap(self, name: str, module: nn.Module, optimizer: OptimizerSettings) -> SteppedModel:
        """Move `module` to the device and give it an optimizer; `name` keys its sharded state."""
        module.to(self.device)
        return _TorchStepped(module, optimizer, self.precision)

    def barrier(self) -> None:
        """Wait for all ranks (no-op in one process)."""

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average metric values over ranks (identity in one process)."""
        return values

    def save_sharded(
        self, models: dict[str, SteppedModel], staging: Path, extra: dict[str, Any] | None = None
    ) -> bool:
        """Collective: write backend-owned state into `staging`; False when there is none.

        `extra`: more state dicts to keep with the shards (the FSDP backend's EMA shards).
        """
        return False

    def begin_save_sharded(
        self, models: dict[str, SteppedModel], staging: Path, extra: dict[str, Any] | None = None
    ) -> Callable[[], bool]:
        """Collective: start `save_sharded`; the returned function (collective too) waits for the
        write to finish and returns its result. Here the write is done before this returns; the FSDP
        backend writes in the background (torch.distributed.checkpoint.async_save), so the caller
        can gather and write the whole weights meanwhile.
        """
        written = self.save_sharded(models, staging, extra)
        return lambda: written

    def load_sharded(
        self, models: dict[str, SteppedModel], directory: Path, extra: dict[str, Any] | None = None
    ) -> None:
        """Collective: read what `save_sharded` wrote (into `extra`'s tensors in place, too)."""


class ProcessGroupBackend(Backend):
    """Shared by the multi-process backends: joins the process group and averages over it.

    The group comes from Ray Train's TorchTrainer (already initialized) or, for torchrun-style
    launches and tests, from RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT: gloo on CPU, NCCL on
    CUDA, one GPU per local rank.
    """

    def __init__(self, precision: str = "auto") -> None:
        use_cuda = torch.cuda.is_available()
        missing = [v for v in _PROCESS_GROUP_ENV if v not in os.environ]
        if missing and not dist.is_initialized():
            raise RuntimeError(
                f"{type(self).__name__} needs a process group: set {', '.join(missing)} "
                "(Ray Train and torchrun do) or initialize torch.distributed first"
            )
        self._join_process_group("nccl" if use_cuda else "gloo")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        if use_cuda:
            # Modulo: a worker may see only its own GPU (CUDA_VISIBLE_DEVICES) or all of its node's.
            local = int(os.environ.get("LOCAL_RANK", self.rank)) % torch.cuda.device_count()
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
        else:
            device = torch.device("cpu")
        super().__init__(device, precision)

    def _join_process_group(self, backend: str) -> None:
        """Create the default group from the environment unless one exists (Ray Train made it)."""
        if not dist.is_initialized():
            dist.init_process_group(backend)

    def barrier(self) -> None:
        dist.barrier()

    def use_sequence_parallel(self, size: int) -> None:
        """Group the ranks into sequence groups of `size` (collective; training.parallel.launch layout)."""
        from training.parallel.launch import sequence_parallel_groups

        groups = sequence_parallel_groups(size)
        self.sequence_parallel, self.sequence_group = size, groups.sequence

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        keys = sorted(values)
        tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return {k: float(v) / self.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


class DDPBackend(ProcessGroupBackend):
    """Data parallel over the process group: replicated weights, gradients averaged before each step.

    The averaging is one all-reduce of the flattened gradients after backward, not torch's
    `DistributedDataParallel` wrapper: that wrapper syncs only through `module(...)`, and the VAE
    trainer calls `vae.encode` / `vae.decode`. The step equals one process stepping on the union
    of the ranks' batches (tested on 2 gloo ranks); overlapping the reduction with backward is the
    wrapper's advantage this gives up.
    """

    def wrap(self, name: str, module: nn.Module, optimizer: OptimizerSettings) -> SteppedModel:
        module.to(self.device)
        with torch.no_grad():  # identical starting weights on every rank, whatever each rank seeded
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)
        return _TorchStepped(module, optimizer, self.precision, average_gradients=self._average)

    def _average(self, params: list[nn.Parameter]) -> None:
        """Average `params`' gradients over ranks; a parameter no rank used keeps grad None.

        A parameter used on some ranks only gets zeros elsewhere, so every rank reduces the same
        tensors; one no rank used stays untouched by AdamW, as in one process.
        """
        used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=self.device)
        dist.all_reduce(used)
        grads = []
        for param, count in zip(params, used.tolist(), strict=True):
            if count > 0:
                if param.grad is None:
                    param.grad = torch.zeros_like(param)
                grads.append(param.grad)
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def _one_rank_group() -> None:
    """A process group of this process alone (FSDP needs one even on one worker), on loopback."""
    if dist.is_initialized() or all(v in os.environ for v in _PROCESS_GROUP_ENV):
        return
    if torch.cuda.is_available():
        from training.parallel.launch import apply_nccl_environment

        apply_nccl_environment()  # NVLink multicast off before NCCL starts (training.parallel.launch)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group(
        "nccl" if torch.cuda.is_available() else "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=0,
        world_size=1,
    )


def make_backend(
    zero_stage: int | None, precision: str = "auto", sharding: str = "none", sequence_parallel: int = 1
) -> Backend:
    """The backend for this process.

    FSDP2 when `sharding` is "zero2" or "full" (in a one-rank group when there is no process group),
    DeepSpeed when `zero_stage` is set, DDP inside a process group of several ranks, else one
    process. `sequence_parallel` > 1 groups the ranks for Ulysses SP (needs that many ranks).
    """
    if sharding not in ("none", "zero2", "full"):
        raise ValueError(f"sharding must be none, zero2 or full, got {sharding!r}")
    if sharding != "none" and zero_stage is not None:
        raise ValueError(
            f"sharding {sharding!r} (FSDP2) and DeepSpeed zero_stage {zero_stage} both shard; set one of them"
        )
    backend: Backend
    if sharding != "none":
        from training.fsdp_backend import FSDPBackend

        _one_rank_group()
        return FSDPBackend(sharding, sequence_parallel, precision)
    if zero_stage is not None:
        from training.deepspeed_backend import DeepSpeedBackend

        backend = DeepSpeedBackend(zero_stage, precision)
    elif (dist.is_initialized() and dist.get_world_size() > 1) or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = DDPBackend(precision)
    else:
        backend = Backend(precision=precision)
    if sequence_parallel > 1:
        if not isinstance(backend, ProcessGroupBackend):
            raise ValueError(f"sequence parallelism over {sequence_parallel} ranks needs that many workers")
        backend.use_sequence_parallel(sequence_parallel)
    return backend


def refuse_partitioned_weights(backend: Backend, trainer: str) -> None:
    """Raise if `backend` partitions parameters it cannot gather: `trainer` exports whole weights."""
    if backend.partitions_parameters and not backend.gathers_full_weights:
        raise ValueError(
            f"the {trainer} trainer keeps an EMA and exports whole weights, which {type(backend).__name__} "
            "cannot gather; use sharding 'full' (FSDP2), ZeRO stage 2 or data parallel"
        )

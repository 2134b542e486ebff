"""Peak live tensor memory of a piece of PyTorch code, measured on any device (CPU included).

`LiveMemory` is a `TorchDispatchMode`: every tensor an operator returns whose storage is new (not
a storage of one of the operator's inputs, so views and in-place results are not counted twice)
is counted by its storage bytes until the storage is freed. Storages keep their Python object
while C++ still holds them (autograd's saved tensors included), so a weakref finaliser on the
storage fires exactly when the memory is released. Storages that existed before the mode was
entered (the model's weights, the inputs) are not counted: the figures are what the code adds.

Memory made inside `host_allocations()` (block swap's pinned copies of weights and activations)
is counted apart as host memory, and so is CPU memory while measuring a CUDA device; on a CPU-only
machine that is how a test tells "offloaded" from "resident".

    with LiveMemory() as meter:
        model(x).sum().backward()
    meter.peak_bytes, meter.peak_tensors()  # the peak, and what was alive at it (largest first)

Tests use it to bound the low-memory paths' activation memory without a GPU (model.block_swap,
the chunked feed-forward of model.dit).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

_STATE = threading.local()


@contextmanager
def host_allocations() -> Iterator[None]:
    """Tensors created inside are host memory (offloaded copies) for any active `LiveMemory`."""
    previous = getattr(_STATE, "host", False)
    _STATE.host = True
    try:
        yield
    finally:
        _STATE.host = previous


@dataclass(frozen=True)
class LiveTensor:
    """One counted storage: its bytes, the operator that made it, the shape and dtype it was made with."""

    nbytes: int
    op: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    host: bool


class LiveMemory(TorchDispatchMode):
    """Counts the storages created while active and still alive; tracks the peak (module docstring).

    `device`: the device type measured ("cpu", "cuda"); None: the type of the first counted tensor.
    """

    def __init__(self, device: str | None = None) -> None:
        super().__init__()
        self.device = device
        self.live_bytes = 0
        self.peak_bytes = 0
        self.host_bytes = 0
        self.peak_host_bytes = 0
        self._live: dict[int, LiveTensor] = {}
        self._at_peak: list[LiveTensor] = []

    def reset_peak(self) -> None:
        """Start a new peak window at the memory alive now (e.g. between forward and backward)."""
        self.peak_bytes = self.live_bytes
        self.peak_host_bytes = self.host_bytes
        self._at_peak = [t for t in self._live.values() if not t.host]

    def peak_tensors(self, top: int = 20) -> list[LiveTensor]:
        """The device tensors alive at the peak, largest first (what to shrink)."""
        return sorted(self._at_peak, key=lambda t: -t.nbytes)[:top]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = {id(t.untyped_storage()) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                self._count(tensor, str(func), inputs)
        return out

    def _count(self, tensor: torch.Tensor, op: str, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        nbytes = storage.nbytes()
        if key in inputs or key in self._live or nbytes == 0:
            return
        if self.device is None:
            self.device = tensor.device.type
        host = getattr(_STATE, "host", False) or tensor.device.type != self.device
        self._live[key] = LiveTensor(nbytes, op, tuple(tensor.shape), tensor.dtype, host)
        weakref.finalize(storage, self._free, key)
        if host:
            self.host_bytes += nbytes
            self.peak_host_bytes = max(self.peak_host_bytes, self.host_bytes)
            return
        self.live_bytes += nbytes
        if self.live_bytes > self.peak_bytes:
            self.peak_bytes = self.live_bytes
            self._at_peak = [t for t in self._live.values() if not t.host]

    def _free(self, key: int) -> None:
        entry = self._live.pop(key, None)
        if entry is None:
            return
        if entry.host:
            self.host_bytes -= entry.nbytes
        else:
            self.live_bytes -= entry.nbytes

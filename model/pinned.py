"""Host memory for offloaded tensors, handed out as views of large slabs.

torch's pinned-memory allocator rounds every request up to a power of two, so a 720p block input
of 730 MB takes 1 GiB and a 66 MB FP8 weight takes 128 MB. Block swap keeps a whole model's frozen
weights and every block's input of a training step in pinned memory, so that rounding alone costs
tens of GiB of host memory at 720p (a 13B LoRA step there was killed by the host's OOM killer).
`HostArena` allocates slabs of `slab_bytes` (or one request's size, if larger) once and cuts
tensors out of them at `align`-byte offsets: each tensor costs its own bytes.

    arena = HostArena(pin=True)
    buffer = arena.empty(t.shape, t.dtype)   # a contiguous view into a pinned slab
    buffer.copy_(t, non_blocking=True)
    arena.reset()                            # every view handed out is dead: reuse the slabs

`reset` does not free the slabs: the next step's tensors reuse them. The caller guarantees that
no view handed out before `reset` is read or written after it (block swap resets at the first
offload of a forward, after the previous backward consumed every stash; copies into the reused
memory are issued on the same stream as the copies that read it last, so they run in order).
"""

from __future__ import annotations

import math

import torch

from model.live_memory import host_allocations


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


class HostArena:
    """Bump allocator of CPU tensors (pinned when `pin`) over slabs that live as long as it does."""

    def __init__(self, pin: bool, slab_bytes: int = 256 << 20, align: int = 512) -> None:
        if slab_bytes <= 0 or align <= 0 or align & (align - 1):
            raise ValueError(
                f"HostArena needs slab_bytes > 0 and a power-of-two align, got {slab_bytes}, {align}"
            )
        self.pin = pin
        self.slab_bytes = slab_bytes
        self.align = align
        self.slabs: list[torch.Tensor] = []
        self._slab = 0  # the slab the next tensor is cut from
        self._offset = 0  # its first free byte
        self.used_bytes = 0  # bytes handed out since the last reset (alignment padding excluded)

    @property
    def reserved_bytes(self) -> int:
        """Host bytes the slabs hold (what the process pays, however much is handed out)."""
        return sum(slab.numel() for slab in self.slabs)

    def empty(self, shape: torch.Size | tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised contiguous CPU tensor of `shape` and `dtype` inside a slab."""
        nbytes = math.prod(shape) * dtype.itemsize
        while self._slab < len(self.slabs) and self._offset + nbytes > self.slabs[self._slab].numel():
            self._slab, self._offset = self._slab + 1, 0
        if self._slab == len(self.slabs):
            with host_allocations():
                size = max(nbytes, self.slab_bytes)
                self.slabs.append(torch.empty(size, dtype=torch.uint8, pin_memory=self.pin))
        start = self._offset
        self._offset = _round_up(start + nbytes, self.align)
        self.used_bytes += nbytes
        return self.slabs[self._slab][start : start + nbytes].view(dtype).view(shape)

    def copy(self, tensor: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        """A host copy of `tensor` inside a slab (asynchronous from a CUDA tensor when non_blocking)."""
        return self.empty(tensor.shape, tensor.dtype).copy_(tensor.detach(), non_blocking=non_blocking)

    def reset(self) -> None:
        """Hand the slabs out again from the start; every tensor handed out before is dead."""
        self._slab, self._offset, self.used_bytes = 0, 0, 0

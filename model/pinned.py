"""Host memory for offloaded tensors, handed out as views of large slabs.

torch's pinned-memory allocator rounds every request up to a power of two, so a 720p block input
of 730 MB takes 1 GiB and a 66 MB FP8 weight takes 128 MB. Block swap keeps a whole model's frozen
weights and every block's input of a training step in pinned memory, so that rounding alone costs
tens of GiB of host memory at 720p (a 13B LoRA step there was killed by the host's OOM killer).
`HostArena` allocates slabs once and cuts tensors out of them at `align`-byte offsets, so each
tensor costs its own bytes. Slabs are powers of two (the allocator's own rounding then costs
nothing): `slab_bytes`, or for a larger request the power of two holding four of it, so tensors of
one size fill a slab to at least 4/8 and mostly much more (five 730 MB inputs in a 4 GiB slab).
A slab the host cannot hold is refused with a `MemoryError` that says how much is needed and how
much is available, instead of the process being killed by the OOM killer mid-step.

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

import psutil
import torch

from model.live_memory import host_allocations


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _power_of_two_at_least(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


class HostArena:
    """Bump allocator of CPU tensors (pinned when `pin`) over slabs that live as long as it does."""

    def __init__(
        self, pin: bool, slab_bytes: int = 256 << 20, align: int = 512, purpose: str = "host copies"
    ) -> None:
        if slab_bytes <= 0 or slab_bytes & (slab_bytes - 1) or align <= 0 or align & (align - 1):
            raise ValueError(
                f"HostArena needs power-of-two slab_bytes and align, got slab_bytes={slab_bytes}, align={align}"
            )
        self.pin = pin
        self.purpose = purpose  # named in the error when the host cannot hold a slab
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
            self.slabs.append(self._new_slab(nbytes))
        start = self._offset
        self._offset = _round_up(start + nbytes, self.align)
        self.used_bytes += nbytes
        return self.slabs[self._slab][start : start + nbytes].view(dtype).view(shape)

    def _new_slab(self, nbytes: int) -> torch.Tensor:
        size = self.slab_bytes if nbytes <= self.slab_bytes else _power_of_two_at_least(4 * nbytes)
        available = psutil.virtual_memory().available
        if size > available:
            raise MemoryError(
                f"{self.purpose}: a {size / 2**30:.2f} GiB host slab for a {nbytes / 2**30:.2f} GiB tensor does not "
                f"fit the {available / 2**30:.2f} GiB of host memory available ({self.reserved_bytes / 2**30:.2f} GiB "
                "already held): offload fewer blocks or activations, or use a host with more memory"
            )
        with host_allocations():
            return torch.empty(size, dtype=torch.uint8, pin_memory=self.pin)

    def copy(self, tensor: torch.Tensor, non_blocking: bool = False) -> torch.Tensor:
        """A host copy of `tensor` inside a slab (asynchronous from a CUDA tensor when non_blocking)."""
        return self.empty(tensor.shape, tensor.dtype).copy_(tensor.detach(), non_blocking=non_blocking)

    def reset(self) -> None:
        """Hand the slabs out again from the start; every tensor handed out before is dead."""
        self._slab, self._offset, self.used_bytes = 0, 0, 0

"""Block-wise CPU offload for inference: the DiT's blocks live in pinned CPU memory and each is
copied to the GPU just before it runs, the next one prefetched on a side stream while the current
one computes; after a block runs its GPU copy is released.

Whole-module offload (`ServingConfig.cpu_offload`) still needs the whole DiT on the GPU during
denoising (about 24 GiB in bf16 at 13B); streaming blocks bounds the weights on the GPU to the
embedders plus `1 + prefetch` blocks. With FP8 weights (model.fp8) each block moves half the bytes.

`BlockOffload(model, device).attach()` installs the hooks; `detach()` puts every block back on the
device. On a CPU device the hooks do nothing but bookkeeping (tests check the order of loads).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from model.dit import HunyuanDiT


def _tensors(module: nn.Module) -> list[tuple[nn.Module, str, bool]]:
    """(owner, name, is_parameter) of every parameter and buffer in `module`."""
    out = []
    for owner in module.modules():
        out += [(owner, name, True) for name, p in owner._parameters.items() if p is not None]
        out += [(owner, name, False) for name, b in owner._buffers.items() if b is not None]
    return out


class BlockOffload:
    """Streams `model.double_blocks` and `model.single_blocks` to `device` one at a time.

    Args:
        model: a HunyuanDiT (eval, no grad).
        device: where the blocks run.
        prefetch: how many blocks ahead to copy (1 overlaps the next copy with this block's compute).
    """

    def __init__(self, model: HunyuanDiT, device: torch.device | str, prefetch: int = 1) -> None:
        self.model, self.device, self.prefetch = model, torch.device(device), max(0, int(prefetch))
        self.blocks: list[nn.Module] = [*model.double_blocks, *model.single_blocks]
        self._cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self._cuda else None
        self._host: list[list[torch.Tensor]] = []
        self._ready: dict[int, tuple[list[torch.Tensor], Any]] = {}
        self._hooks: list[Any] = []
        self.loads: list[int] = []  # block indices in the order they were copied (for tests/benchmarks)

    def attach(self) -> BlockOffload:
        """Move everything but the blocks to the device, pin the blocks on the CPU, install hooks."""
        in_blocks = {id(t) for b in self.blocks for t in [*b.parameters(), *b.buffers()]}
        for owner in self.model.modules():
            for p in owner._parameters.values():
                if p is not None and id(p) not in in_blocks:
                    p.data = p.data.to(self.device)
            for name, b in owner._buffers.items():
                if b is not None and id(b) not in in_blocks:
                    owner._buffers[name] = b.to(self.device)
        for block in self.blocks:
            host = []
            for owner, name, _ in _tensors(block):
                tensor = getattr(owner, name).detach().to("cpu")
                host.append(tensor.pin_memory() if self._cuda else tensor)
                self._assign(owner, name, host[-1])
            self._host.append(host)
        for index, block in enumerate(self.blocks):
            self._hooks.append(block.register_forward_pre_hook(self._before(index)))
            self._hooks.append(block.register_forward_hook(self._after(index)))
        return self

    def detach(self) -> None:
        """Remove the hooks and place every block on the device (e.g. to switch offload off)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for index, block in enumerate(self.blocks):
            for (owner, name, _), host in zip(_tensors(block), self._host[index], strict=True):
                self._assign(owner, name, host.to(self.device))
        self._ready.clear()

    @staticmethod
    def _assign(owner: nn.Module, name: str, tensor: torch.Tensor) -> None:
        if name in owner._parameters:
            owner._parameters[name].data = tensor  # type: ignore[union-attr]
        else:
            owner._buffers[name] = tensor

    def _copy(self, index: int) -> None:
        """Start copying block `index` to the device (on the side stream when on CUDA)."""
        if index in self._ready or index >= len(self.blocks):
            return
        self.loads.append(index)
        if not self._cuda:
            self._ready[index] = (self._host[index], None)
            return
        assert self._stream is not None
        self._stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self._stream):
            copies = [t.to(self.device, non_blocking=True) for t in self._host[index]]
            event = torch.cuda.Event()
            event.record(self._stream)
        self._ready[index] = (copies, event)

    def _before(self, index: int) -> Any:
        def hook(_module: nn.Module, _args: Any) -> None:
            self._copy(index)
            copies, event = self._ready[index]
            if event is not None:
                compute = torch.cuda.current_stream(self.device)
                compute.wait_event(event)
                for tensor in copies:
                    tensor.record_stream(compute)  # freed only after this block's kernels ran
            for (owner, name, _), tensor in zip(_tensors(self.blocks[index]), copies, strict=True):
                self._assign(owner, name, tensor)
            for ahead in range(1, self.prefetch + 1):
                self._copy((index + ahead) % len(self.blocks))  # wraps to block 0 for the next step

        return hook

    def _after(self, index: int) -> Any:
        def hook(_module: nn.Module, _args: Any, _output: Any) -> None:
            self._ready.pop(index, None)
            for (owner, name, _), host in zip(_tensors(self.blocks[index]), self._host[index], strict=True):
                self._assign(owner, name, host)

        return hook

"""Block swap for LoRA training and inference of a DiT that does not fit the device.

The frozen weights of the swapped blocks live in (pinned) CPU memory; each block's weights are
copied to the device just before it runs and dropped after, while the next block's copy runs on
a side stream (forward: the next block; backward: the previous one). Trainable tensors (the LoRA
adapters) stay on the device. In training each swapped block is also a checkpoint: its forward
runs without saving activations, its backward loads the weights again, recomputes the block
(same autocast and RNG state) and back-propagates through it. With `offload_activations` the
block inputs kept for that recomputation (the (B, tokens, width) activations; the conditioning
vector and RoPE tables are shared by every block and stay) go to pinned CPU memory, copied on the
side stream in forward, and each block's are prefetched on the side stream while the next block
back-propagates. Device memory then holds the resident weights, at most two blocks' streamed
weights (the running one and the prefetched one) and one block's working set (bounded further by
`HunyuanDiT.set_ffn_chunk_tokens`), whatever the depth. Nothing of a block is kept after it ran:
the autograd context holds no reference to its device inputs.

Install with `BlockSwap(model, device, swapped=N)`: it sets `model.block_runner`, which
`HunyuanDiT._run` calls for every block. On CPU the same code runs without streams, and copies
like the device path does (host copies cut from `model.pinned.HostArena` slabs, which count as
host memory), so `model.live_memory.LiveMemory` measures on CPU what the device would hold (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_unflatten

from model.dit import HunyuanDiT
from model.pinned import HostArena


@dataclass
class _Slot:
    owner: nn.Module
    name: str
    is_param: bool
    host: torch.Tensor


def _frozen_slots(block: nn.Module) -> list[_Slot]:
    slots: list[_Slot] = []
    for module in block.modules():
        for name, param in module._parameters.items():
            if param is not None and not param.requires_grad:
                slots.append(_Slot(module, name, True, param.data))
        for name, buf in module._buffers.items():
            if buf is not None:
                slots.append(_Slot(module, name, False, buf))
    return slots


def _assign(slot: _Slot, tensor: torch.Tensor) -> None:
    if slot.is_param:
        slot.owner._parameters[slot.name].data = tensor  # type: ignore[union-attr]
    else:
        slot.owner._buffers[slot.name] = tensor


class BlockSwap:
    """Streams the frozen weights of the last `swapped` DiT blocks (None: all) from CPU memory."""

    def __init__(
        self,
        model: HunyuanDiT,
        device: torch.device | str,
        swapped: int | None = None,
        offload_activations: bool = False,
    ) -> None:
        self.device = torch.device(device)
        self.blocks: list[nn.Module] = [*model.double_blocks, *model.single_blocks]
        count = len(self.blocks) if swapped is None else min(swapped, len(self.blocks))
        self.swapped = set(range(len(self.blocks) - count, len(self.blocks)))
        self.index = {id(b): i for i, b in enumerate(self.blocks)}
        self.offload_activations = offload_activations
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        # Host copies in slabs (pinned on CUDA): each tensor costs its bytes, not the next power of
        # two. Weights are copied once; block inputs reuse their arena every training step.
        self.weights_host = HostArena(pin=cuda, purpose="block swap's frozen weights")
        self.activations_host = HostArena(pin=cuda, purpose="block swap's offloaded block inputs")
        for name, child in model.named_children():
            if name not in ("double_blocks", "single_blocks"):
                child.to(self.device)
        self.slots: dict[int, list[_Slot]] = {}
        for i, block in enumerate(self.blocks):
            if i not in self.swapped:
                block.to(self.device)
                continue
            self.slots[i] = _frozen_slots(block)
            streamed = sum(slot.host.nbytes for slot in self.slots[i])
            resident = sum(p.nbytes for p in block.parameters() if p.requires_grad)
            if resident > streamed:
                raise ValueError(
                    f"BlockSwap streams frozen weights only, and block {i} keeps {resident} trainable "
                    f"bytes on the device against {streamed} streamed: freeze the base model first "
                    "(model.requires_grad_(False); LoRA adapters added after it stay trainable)"
                )
            for slot in self.slots[i]:
                slot.host = self.weights_host.copy(slot.host)
                _assign(slot, slot.host)
            for param in block.parameters():
                if param.requires_grad:
                    param.data = param.data.to(self.device)
        self.pending: dict[int, tuple[list[torch.Tensor], torch.cuda.Event | None]] = {}
        # Offloaded block inputs: host copies (+ the device-to-host copy's event) per block, and the
        # device copies of the next block back-propagated (+ the host-to-device copy's event).
        self.activations: dict[int, tuple[list[torch.Tensor], torch.cuda.Event | None]] = {}
        self.fetched: dict[int, tuple[list[torch.Tensor], torch.cuda.Event | None]] = {}
        model.block_runner = self

    # ---- weights ---------------------------------------------------------------------------------
    def prefetch(self, i: int) -> None:
        """Start copying block i's frozen weights to the device (no-op if resident or under way)."""
        if i not in self.swapped or i in self.pending:
            return
        if self.stream is None:  # a copy even on CPU: the device path's memory, measurable in tests
            self.pending[i] = ([s.host.to(self.device, copy=True) for s in self.slots[i]], None)
            return
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            copies = [s.host.to(self.device, non_blocking=True) for s in self.slots[i]]
            event = torch.cuda.Event()
            event.record(self.stream)
        self.pending[i] = (copies, event)

    def load(self, i: int) -> None:
        if i not in self.swapped:
            return
        self.prefetch(i)
        copies, event = self.pending.pop(i)
        if event is not None:
            main = torch.cuda.current_stream(self.device)
            main.wait_event(event)
            for tensor in copies:
                tensor.record_stream(main)  # allocated on the side stream, used on the main one
        for slot, tensor in zip(self.slots[i], copies, strict=True):
            _assign(slot, tensor)

    def release(self, i: int) -> None:
        if i in self.swapped:
            for slot in self.slots[i]:
                _assign(slot, slot.host)

    # ---- activations -----------------------------------------------------------------------------
    def _stash(self, i: int, tensors: Sequence[torch.Tensor]) -> None:
        """Start copying block i's inputs to host memory (on the side stream on CUDA)."""
        if not self.activations or i in self.activations:
            # The first offload of a forward: the last backward consumed every stash (or this
            # forward replaces one never back-propagated), so the arena's memory is free again.
            self.activations.clear()
            self.activations_host.reset()
        if self.stream is None:
            self.activations[i] = ([self.activations_host.copy(t) for t in tensors], None)
            return
        main = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(main)
        with torch.cuda.stream(self.stream):
            host = []
            for t in tensors:
                t.record_stream(self.stream)  # its memory is not reused before the copy ran
                host.append(self.activations_host.copy(t, non_blocking=True))
            event = torch.cuda.Event()
            event.record(self.stream)
        self.activations[i] = (host, event)

    def _fetch(self, i: int) -> None:
        """Start copying block i's offloaded inputs back to the device (no-op if none or under way)."""
        if i not in self.activations or i in self.fetched:
            return
        host, stashed = self.activations.pop(i)
        if self.stream is None:
            self.fetched[i] = ([t.to(self.device, copy=True) for t in host], None)
            return
        assert stashed is not None
        self.stream.wait_event(stashed)  # the device-to-host copy finished (normally long ago)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream):
            copies = [t.to(self.device, non_blocking=True) for t in host]
            event = torch.cuda.Event()
            event.record(self.stream)
        self.fetched[i] = (copies, event)

    def _unstash(self, i: int) -> list[torch.Tensor]:
        self._fetch(i)
        copies, event = self.fetched.pop(i)
        if event is not None:
            main = torch.cuda.current_stream(self.device)
            main.wait_event(event)
            for tensor in copies:
                tensor.record_stream(main)
        return copies

    # ---- running a block ----------------------------------------------------------------------
    def __call__(self, block: nn.Module, *args: Any) -> Any:
        i = self.index[id(block)]
        if not torch.is_grad_enabled():
            self.load(i)
            self.prefetch(self._next(i, +1))
            try:
                return block(*args)
            finally:
                self.release(i)
        leaves, spec = tree_flatten(args)
        positions = [k for k, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
        params = [p for p in block.parameters() if p.requires_grad]
        tensors = [leaves[k] for k in positions]
        # The layout keeps the non-tensor arguments only: a reference to the device inputs would
        # keep every block's inputs alive until backward, offloaded or not.
        skeleton = [None if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
        out = _SwappedBlock.apply(self, i, (skeleton, spec, positions), len(params), *tensors, *params)
        return out[0] if len(out) == 1 else out

    def _next(self, i: int, direction: int) -> int:
        j = i + direction
        while 0 <= j < len(self.blocks) and j not in self.swapped:
            j += direction
        return j


def _rebuild(layout: tuple[list[Any], Any, list[int]], tensors: Sequence[torch.Tensor]) -> Any:
    leaves, spec, positions = layout
    leaves = list(leaves)
    for k, tensor in zip(positions, tensors, strict=True):
        leaves[k] = tensor
    return tree_unflatten(leaves, spec)


class _SwappedBlock(torch.autograd.Function):
    """One swapped, checkpointed block (see module docstring); inputs: tensors then trainable params."""

    @staticmethod
    def forward(ctx, swap, i, layout, n_params, *flat):  # type: ignore[no-untyped-def]
        tensors = list(flat[: len(flat) - n_params])
        ctx.swap, ctx.i, ctx.layout, ctx.n_params = swap, i, layout, n_params
        ctx.autocast = (
            torch.is_autocast_enabled(swap.device.type),
            torch.get_autocast_dtype(swap.device.type),
        )
        ctx.cpu_rng = torch.get_rng_state()
        ctx.cuda_rng = torch.cuda.get_rng_state(swap.device) if swap.device.type == "cuda" else None
        swap.load(i)
        swap.prefetch(swap._next(i, +1))
        with torch.no_grad():
            out = swap.blocks[i](*_rebuild(layout, tensors))
        swap.release(i)
        # Offloaded: the (B, tokens, width) activations; the rest (conditioning vector, RoPE tables)
        # is shared by every block and alive anyway.
        ctx.offloaded = [swap.offload_activations and t.dim() == 3 for t in tensors]
        if any(ctx.offloaded):
            swap._stash(i, [t for t, off in zip(tensors, ctx.offloaded, strict=True) if off])
        ctx.save_for_backward(*[t for t, off in zip(tensors, ctx.offloaded, strict=True) if not off])
        outs = out if isinstance(out, tuple) else (out,)
        return outs

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[no-untyped-def]
        swap, i = ctx.swap, ctx.i
        swap.load(i)
        fetched, kept = iter(swap._unstash(i) if any(ctx.offloaded) else []), iter(ctx.saved_tensors)
        tensors = [next(fetched) if off else next(kept) for off in ctx.offloaded]
        previous = swap._next(i, -1)
        swap.prefetch(previous)
        swap._fetch(i - 1)  # its inputs come back while this block back-propagates
        needs = ctx.needs_input_grad[4:]
        inputs = [t.detach().requires_grad_(need) for t, need in zip(tensors, needs, strict=False)]
        params = [p for p in swap.blocks[i].parameters() if p.requires_grad]
        devices = [swap.device] if swap.device.type == "cuda" else []
        enabled, dtype = ctx.autocast
        with torch.random.fork_rng(devices=devices), torch.enable_grad():
            torch.set_rng_state(ctx.cpu_rng)
            if ctx.cuda_rng is not None:
                torch.cuda.set_rng_state(ctx.cuda_rng, swap.device)
            with torch.autocast(swap.device.type, dtype=dtype, enabled=enabled):
                out = swap.blocks[i](*_rebuild(ctx.layout, inputs))
        outs = out if isinstance(out, tuple) else (out,)
        pairs = [(o, g) for o, g in zip(outs, grads, strict=True) if g is not None and o.requires_grad]
        wrt = [t for t in inputs if t.requires_grad] + params
        found = (
            torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True)
            if pairs and wrt
            else ()
        )
        swap.release(i)
        by_input = iter(found)
        input_grads = [next(by_input) if t.requires_grad else None for t in inputs]
        param_grads = list(by_input)
        return (
            (None, None, None, None, *input_grads, *param_grads)
            if param_grads
            else (None, None, None, None, *input_grads, *[None] * ctx.n_params)
        )

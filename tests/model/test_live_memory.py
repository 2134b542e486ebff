"""Peak live activation memory of the low-memory paths, measured on CPU with model.live_memory.

Unit: one (tokens × width) float32 activation. The bounds come from the design, not from a fit:
- inference with block offload: the block input and output, one q|k|v buffer (3 units), the
  attention output and one chunk's temporaries, plus at most two blocks' streamed weights, so
  the peak does not depend on the depth and is about half the unchunked block's (whose fused
  linear1 output alone is 7 units);
- LoRA training with FP8 + block swap + activation offload: after the forward the device holds no
  block's inputs (they are in host memory, one unit per block), and the backward peak grows with
  the depth only by the LoRA gradients of the added blocks (trainable state stays resident).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.fp8 import quantize_blocks_fp8
from model.live_memory import LiveMemory, host_allocations
from model.lora import LoRASettings, inject_lora
from tests.model.builders import dit_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = (4, 16, 16)  # 4 × 8 × 8 = 256 video tokens
TOKENS = GRID[0] * (GRID[1] // 2) * (GRID[2] // 2)
CHUNK = 64


@dataclass
class Run:
    unit: int  # bytes of one (video tokens × width) float32 activation
    forward_peak: float  # units
    after_forward: float
    backward_peak: float
    host_peak: float
    block_weight_bytes: int  # the largest block's streamed (frozen) bytes
    lora_bytes: int
    weights_at_peak: int  # e4m3 bytes alive at the forward peak


def _measure(depth: int, chunk: int | None, train: bool, offload: bool = True) -> Run:
    cfg = DiTConfig.preset("tiny", depth_double=depth, depth_single=depth, image_condition="token_replace")
    torch.manual_seed(0)
    model = HunyuanDiT(cfg)
    quantize_blocks_fp8(model)
    params = inject_lora(model, LoRASettings(rank=4)) if train else []
    model.set_ffn_chunk_tokens(chunk)
    swap = BlockSwap(model, "cpu", offload_activations=offload)
    x, t, states, mask, pooled, guidance = dit_inputs(cfg, batch=1, grid=GRID, text_len=16)
    clean = torch.randn(1, cfg.out_channels, 1, *GRID[1:])
    unit = TOKENS * cfg.hidden_size * 4
    with torch.set_grad_enabled(train), LiveMemory() as meter:
        out = model(x, t, states, mask, pooled, guidance, first_frame_clean=clean)
        forward_peak, after = meter.peak_bytes, meter.live_bytes
        weights = sum(e.nbytes for e in meter.peak_tensors(top=10_000) if e.dtype == torch.float8_e4m3fn)
        meter.reset_peak()
        if train:
            out.square().mean().backward()
    assert not swap.pending and not swap.activations and not swap.fetched
    frozen = [sum(s.host.nbytes for s in slots) for slots in swap.slots.values()]
    return Run(
        unit, forward_peak / unit, after / unit, meter.peak_bytes / unit, meter.peak_host_bytes / unit,
        max(frozen), sum(p.numel() * p.element_size() for p in params), weights,
    )  # fmt: skip


def test_live_memory_counts_new_storages_until_freed_and_host_memory_apart() -> None:
    before = torch.randn(1000)
    with LiveMemory() as meter:
        view = before[:10]  # a view of a storage made before: not counted
        a = torch.randn(1000)
        b = a[:500].clone()
        b.add_(1)  # in place: the same storage
        assert meter.live_bytes == 4000 + 2000
        leaf = torch.randn(256, requires_grad=True)
        loss = leaf.exp().sum()  # exp saves its 1 KiB result for backward
        del a
        assert meter.live_bytes == 2000 + 1024 + 1024 + 4
        loss.backward()
        del loss
        with host_allocations():
            host = torch.empty(300)
    assert meter.live_bytes == 2000 + 1024 + 1024  # b, leaf, leaf.grad
    assert meter.peak_bytes == 4000 + 2000 + 1024 + 1024 + 4
    assert meter.host_bytes == meter.peak_host_bytes == 1200
    assert {e.op for e in meter.peak_tensors()} >= {"aten.randn.default", "aten.clone.default"}
    del host, view


def test_offloaded_inference_peak_is_bounded_per_block_not_by_depth() -> None:
    plain = _measure(1, None, train=False)
    chunked = _measure(1, CHUNK, train=False)
    deeper = _measure(3, CHUNK, train=False)
    assert chunked.forward_peak < 0.6 * plain.forward_peak
    # Deeper adds at most the prefetched block's weights (one block deep has nothing to prefetch).
    assert deeper.forward_peak <= chunked.forward_peak + deeper.block_weight_bytes / deeper.unit + 0.01
    assert chunked.after_forward <= 1.01  # only the output is left
    # Block swap frees each block's weights: at the peak at most the running and the prefetched block.
    assert 0 < deeper.weights_at_peak <= 2 * deeper.block_weight_bytes


def test_lora_training_with_swap_and_activation_offload_keeps_block_inputs_on_the_host() -> None:
    shallow = _measure(1, CHUNK, train=True)
    deep = _measure(3, CHUNK, train=True)
    kept = _measure(3, CHUNK, train=True, offload=False)
    # Each block's input is in host memory, not on the device (6 blocks: >= 6 units on the host).
    assert deep.host_peak >= 6 and deep.after_forward <= shallow.after_forward + 0.05
    assert kept.after_forward >= deep.after_forward + 5  # without offload they stay: one unit a block
    # Deeper adds the new blocks' LoRA gradients, and the block prefetched during a backward (its
    # weights and its inputs: one shallow model has nothing to prefetch at its largest block).
    allowance = (deep.lora_bytes - shallow.lora_bytes + deep.block_weight_bytes) / deep.unit + 1.0
    assert deep.backward_peak <= shallow.backward_peak + allowance
    unchunked = _measure(1, None, train=True)
    assert shallow.backward_peak < 0.8 * unchunked.backward_peak

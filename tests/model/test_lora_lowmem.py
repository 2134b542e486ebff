"""Low-memory LoRA training pieces on CPU: FP8 base weights (dequantised path) and block swap
(weights and activations in host memory, per-block recompute) give the gradients of the plain model."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import model.fp8 as fp8_module
from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.fp8 import FP8Linear, quantize_blocks_fp8
from model.lora import LoRASettings, inject_lora
from tests.model.builders import dit_inputs, randomize_, rel_err

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = DiTConfig.preset("tiny", depth_double=2, depth_single=2, image_condition="token_replace")


def _model(seed: int = 0) -> HunyuanDiT:
    torch.manual_seed(seed)
    return randomize_(HunyuanDiT(CFG), std=0.1)  # type: ignore[return-value]


def _lora_grads(
    model: HunyuanDiT, dropout: float = 0.0, swap: dict[str, Any] | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Adapter gradients of one step; with `swap` (BlockSwap's keyword arguments) the blocks are
    swapped after the adapters go in, as `setup_lora_model` does (the base is frozen by then)."""
    torch.manual_seed(1)
    params = inject_lora(model, LoRASettings(rank=4, dropout=dropout, targets=("attn", "mlp", "modulation")))
    if swap is not None:
        installed = BlockSwap(model, "cpu", **swap)
        assert all(installed.slots[i] for i in installed.swapped)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    x, t, states, mask, pooled, guidance = dit_inputs(CFG, grid=(3, 4, 6))
    clean = torch.randn(2, 16, 1, 4, 6)
    torch.manual_seed(3)
    out = model(x, t, states, mask, pooled, guidance, first_frame_clean=clean)
    (out.square().mean()).backward()
    names = {id(p): n for n, p in model.named_parameters()}
    return out.detach(), {names[id(p)]: p.grad.clone() for p in params if p.grad is not None}


def test_fp8_weights_are_close_and_train_like_their_dequantised_copy() -> None:
    ref_out, _ = _lora_grads(_model())
    model = _model()
    assert quantize_blocks_fp8(model) == 2 * 10 + 2 * 3
    linear = model.double_blocks[0].img_attn_qkv
    assert isinstance(linear, FP8Linear) and linear.weight.dtype == torch.float8_e4m3fn
    assert linear.weight.element_size() == 1
    # The same model with plain linears holding exactly the dequantised weights.
    dequantised = _model()
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, FP8Linear):
                plain = dequantised.get_submodule(name)
                plain.weight.copy_(module.dequantized(torch.float32))
                plain.bias.copy_(module.bias.float())
    out, grads = _lora_grads(model)
    expected_out, expected_grads = _lora_grads(dequantised)
    # e4m3 keeps 3 mantissa bits (per-weight relative error up to 6 %), which averages out in the output.
    assert rel_err(out, ref_out) < 0.05
    assert rel_err(out, expected_out) < 1e-5
    assert grads.keys() == expected_grads.keys()
    assert max(rel_err(grads[k], expected_grads[k]) for k in grads) < 1e-4


@pytest.mark.parametrize("offload", [False, True], ids=["weights", "weights+activations"])
def test_block_swap_gives_the_plain_gradients(offload: bool) -> None:
    ref_out, ref_grads = _lora_grads(_model(), dropout=0.1)
    model = _model()
    out, grads = _lora_grads(model, dropout=0.1, swap={"swapped": 3, "offload_activations": offload})
    swap = model.block_runner
    assert isinstance(swap, BlockSwap) and swap.swapped == {1, 2, 3}
    assert torch.allclose(out, ref_out, atol=1e-6)
    assert grads.keys() == ref_grads.keys() and len(grads) > 0
    for key in grads:
        assert torch.allclose(grads[key], ref_grads[key], atol=1e-6, rtol=1e-5), key
    assert not swap.pending and not swap.activations and not swap.fetched
    with torch.no_grad():  # inference through the swap too
        x, t, states, mask, pooled, guidance = dit_inputs(CFG, grid=(3, 4, 6))
        assert model(x, t, states, mask, pooled, guidance).shape == x.shape


def test_fp8_with_block_swap_trains() -> None:
    model = _model()
    quantize_blocks_fp8(model)
    _, grads = _lora_grads(model, swap={"offload_activations": True})
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())


def test_fp8_linear_follows_autocast_like_nn_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under autocast a float32 input (LayerNorm's output there) gives autocast's dtype, as
    `nn.Linear` does; without autocast the input's dtype. The `_scaled_mm` path runs on CPU here."""
    monkeypatch.setattr(FP8Linear, "_fast", lambda self, x: True)
    monkeypatch.setattr(fp8_module, "SCALED_MM_FAILURES", 0)
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    fp8 = FP8Linear(linear)
    x = torch.randn(5, 64, requires_grad=True)
    with torch.autocast("cpu", torch.bfloat16):
        reference, out = linear(x), fp8(x)
    assert reference.dtype == out.dtype == torch.bfloat16
    assert rel_err(out.float(), reference.float()) < 0.05
    out.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    assert fp8(x.detach()).dtype == torch.float32
    assert fp8_module.SCALED_MM_FAILURES == 0  # the FP8 kernel ran, not the dequantised fallback


def test_fp8_block_swap_under_autocast_stashes_the_stream_in_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through FP8 blocks the residual stream keeps autocast's dtype, so block swap's host copy of
    each block input is 2 bytes an element. (On CUDA, autocast's addcmul promotes the modulated
    float32 LayerNorm output, so the linears get float32 there: the test above covers that input;
    before, the 13B I2V step at 720p held 100 GiB of pinned block inputs.)"""
    monkeypatch.setattr(FP8Linear, "_fast", lambda self, x: True)
    monkeypatch.setattr(fp8_module, "SCALED_MM_FAILURES", 0)
    model = _model()
    quantize_blocks_fp8(model)
    model.requires_grad_(False)
    inject_lora(model, LoRASettings(rank=4))
    swap = BlockSwap(model, "cpu", offload_activations=True)
    x, t, states, mask, pooled, guidance = dit_inputs(CFG, grid=(3, 4, 6))
    with torch.autocast("cpu", torch.bfloat16):
        out = model(x, t, states, mask, pooled, guidance)
        stashed = swap.activations_host.used_bytes
    out.float().square().mean().backward()
    assert fp8_module.SCALED_MM_FAILURES == 0
    # Each block's input: (batch, video + text tokens, width) in bf16 (text trimmed to the longest).
    video, text = 3 * (4 // 2) * (6 // 2), int(mask.sum(1).max())
    assert stashed == 4 * x.shape[0] * (video + text) * CFG.hidden_size * 2

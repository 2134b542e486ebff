"""The sequence-chunked low-memory path of the DiT blocks (`HunyuanDiT.set_ffn_chunk_tokens`) gives
the unchunked output and gradients: T2V and I2V (token_replace across a chunk edge), LoRA adapters
on the fused linears, FP8 weights, block swap, and chunks that do not divide the sequence."""

from __future__ import annotations

import pytest
import torch

from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.fp8 import FP8Linear, quantize_blocks_fp8
from model.lora import LoRASettings, inject_lora
from model.seq_chunks import first_count, linear_rows, token_spans
from tests.model.builders import dit_inputs, randomize_, rel_err

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = DiTConfig.preset("tiny", depth_double=2, depth_single=2, image_condition="token_replace")
GRID = (3, 4, 6)  # 3 × 2 × 3 = 18 video tokens, 6 of them the first frame


def _model(lora: bool = False, fp8: bool = False) -> tuple[HunyuanDiT, list[torch.nn.Parameter]]:
    torch.manual_seed(0)
    model: HunyuanDiT = randomize_(HunyuanDiT(CFG), std=0.1)  # type: ignore[assignment]
    if fp8:
        quantize_blocks_fp8(model)
    params: list[torch.nn.Parameter] = []
    if lora:
        torch.manual_seed(1)
        params = inject_lora(model, LoRASettings(rank=4, targets=("attn", "mlp", "modulation")))
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for p in params:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model, params


def _run(
    model: HunyuanDiT, params: list[torch.nn.Parameter], i2v: bool
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    x, t, states, mask, pooled, guidance = dit_inputs(CFG, grid=GRID)
    clean = torch.randn(2, 16, 1, *GRID[1:], generator=torch.Generator().manual_seed(5)) if i2v else None
    out = model(x, t, states, mask, pooled, guidance, first_frame_clean=clean)
    if not params:
        return out.detach(), []
    out.square().mean().backward()
    grads = [p.grad.clone() for p in params]  # type: ignore[union-attr]
    for p in params:
        p.grad = None
    return out.detach(), grads


def test_spans_cover_the_sequence_and_count_first_frame_tokens() -> None:
    assert token_spans(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert [first_count(6, a, b) for a, b in token_spans(10, 4)] == [4, 2, 0]
    with pytest.raises(ValueError, match="chunk"):
        token_spans(10, 0)
    model, _ = _model()
    with pytest.raises(ValueError, match="ffn_chunk_tokens"):
        model.set_ffn_chunk_tokens(0)


@pytest.mark.parametrize("chunk", [1, 4, 7, 1000])
@pytest.mark.parametrize("i2v", [False, True], ids=["t2v", "i2v"])
def test_chunked_blocks_give_the_unchunked_output_and_lora_gradients(chunk: int, i2v: bool) -> None:
    model, params = _model(lora=True)
    ref_out, ref_grads = _run(model, params, i2v)
    model.set_ffn_chunk_tokens(chunk)
    out, grads = _run(model, params, i2v)
    assert rel_err(out, ref_out) < 1e-5
    assert max(rel_err(g, r) for g, r in zip(grads, ref_grads, strict=True)) < 1e-4
    model.set_ffn_chunk_tokens(None)
    assert torch.equal(_run(model, params, i2v)[0], ref_out)  # switching back restores the exact path


def test_chunked_fp8_blocks_and_checkpointing_keep_output_and_gradients() -> None:
    model, params = _model(lora=True, fp8=True)
    ref_out, ref_grads = _run(model, params, True)
    model.set_ffn_chunk_tokens(5)
    model.gradient_checkpointing = True  # a chunk checkpoint nested in the block's checkpoint
    out, grads = _run(model, params, True)
    assert rel_err(out, ref_out) < 1e-5
    assert max(rel_err(g, r) for g, r in zip(grads, ref_grads, strict=True)) < 1e-4


def test_chunked_blocks_under_block_swap_with_offloaded_activations() -> None:
    model, params = _model(lora=True, fp8=True)
    ref_out, ref_grads = _run(model, params, True)
    model.set_ffn_chunk_tokens(4)
    swap = BlockSwap(model, "cpu", offload_activations=True)
    out, grads = _run(model, params, True)
    assert rel_err(out, ref_out) < 1e-5
    assert max(rel_err(g, r) for g, r in zip(grads, ref_grads, strict=True)) < 1e-4
    assert not swap.pending and not swap.activations and not swap.fetched


def test_linear_rows_is_the_slice_of_the_full_output_for_every_linear_kind() -> None:
    model, _ = _model(lora=True)
    x = torch.randn(2, 5, CFG.hidden_size)
    linear1 = model.single_blocks[0].linear1
    full = linear1(x)  # module call: the LoRA hook adds the adapters
    d = CFG.hidden_size
    for rows in (slice(0, 3 * d), slice(3 * d, full.shape[-1]), slice(d // 2, 2 * d + 3)):
        assert torch.allclose(linear_rows(linear1, x, rows), full[..., rows], atol=1e-6)
    fp8 = FP8Linear(torch.nn.Linear(d, 7 * d))
    dense = fp8(x)
    assert torch.allclose(fp8.forward_rows(x, slice(3 * d, 7 * d)), dense[..., 3 * d :], atol=1e-6)
    with pytest.raises(TypeError, match="forward_rows"):
        linear_rows(torch.nn.Conv1d(d, d, 1), x, slice(0, 4))

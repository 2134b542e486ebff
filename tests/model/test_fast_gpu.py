"""GPU checks of the speed switches (skipped without CUDA): FP8 through `torch._scaled_mm`,
sliding-tile attention through compiled FlexAttention, block offload on side streams, SageAttention."""

from __future__ import annotations

import pytest
import torch

from model.attention import attention, sage_available
from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.fp8 import FP8Linear, quantize_blocks_fp8
from model.lora import LoRASettings, inject_lora
from model.tile_attention import TileAttention, TileWindow
from tests.model.builders import dit_inputs, rel_err

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _model() -> tuple[HunyuanDiT, list[torch.Tensor]]:
    cfg = DiTConfig.preset("small")
    torch.manual_seed(0)
    model = HunyuanDiT(cfg).cuda().bfloat16().eval()
    inputs = [t.cuda() for t in dit_inputs(cfg, grid=(5, 16, 24), text_len=40)]
    return model, [t.bfloat16() if t.is_floating_point() and t.ndim > 1 else t for t in inputs]


def test_fp8_scaled_mm_matches_the_dequantised_path_and_bf16() -> None:
    if torch.cuda.get_device_capability() < (9, 0):
        pytest.skip("row-wise FP8 _scaled_mm needs compute capability 9.0")
    layer = torch.nn.Linear(3072, 1024).cuda().bfloat16()
    fp8 = FP8Linear(layer)
    x = torch.randn(4, 333, 3072, device="cuda", dtype=torch.bfloat16)
    fast = fp8(x)
    slow = torch.nn.functional.linear(x, fp8.dequantized(torch.bfloat16), fp8.bias)
    assert rel_err(fast, slow) < 0.03 and rel_err(fast, layer(x)) < 0.05
    model, inputs = _model()
    with torch.no_grad():
        reference = model(*inputs)
        quantize_blocks_fp8(model)
        assert rel_err(model(*inputs), reference) < 0.08


def test_compiled_sliding_tile_attention_matches_eager_flex() -> None:
    torch.manual_seed(0)
    grid, n_text = (6, 16, 16), 40
    seq = grid[0] * grid[1] * grid[2] + n_text
    q, k, v = (torch.randn(1, seq, 4, 64, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    sta = TileAttention(TileWindow(tile=(2, 8, 8), window=(1, 1, 1)))
    sta.grid = grid
    fast = sta(q, k, v, [seq - 10], "sdpa")
    cpu = TileAttention(TileWindow(tile=(2, 8, 8), window=(1, 1, 1)))
    cpu.grid = grid
    exact = cpu(q.float().cpu(), k.float().cpu(), v.float().cpu(), [seq - 10], "sdpa")
    assert rel_err(fast.float().cpu(), exact) < 0.02


def test_block_offload_on_cuda_keeps_the_output_and_the_weights_off_the_gpu() -> None:
    model, inputs = _model()
    with torch.no_grad():
        reference = model(*inputs)
        model.cpu().requires_grad_(False)  # frozen, as serving loads it: only frozen weights stream
        torch.cuda.empty_cache()
        offload = BlockSwap(model, "cuda")
        resident = torch.cuda.memory_allocated()
        streamed = model(*inputs)
        block_bytes = sum(p.numel() * p.element_size() for b in offload.blocks for p in b.parameters())
        # The same weights; cuBLAS may pick another kernel for other addresses, so not bit-equal.
        assert rel_err(streamed, reference) < 1e-2
        # Between forwards no block weight is left on the GPU.
        on_gpu = [p for b in offload.blocks for p in b.parameters() if p.is_cuda]
        assert not on_gpu and resident < block_bytes + 64 * 2**20


@pytest.mark.skipif(not sage_available(), reason="sageattention is not installed")
def test_sage_attention_is_close_to_sdpa() -> None:
    q, k, v = (torch.randn(2, 4096, 8, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
    assert rel_err(attention(q, k, v, [4096, 4000], "sage"), attention(q, k, v, [4096, 4000], "sdpa")) < 0.05


def test_lora_step_with_fp8_swap_offload_and_chunks_matches_resident_fp8_on_cuda() -> None:
    """The low-memory LoRA step on the GPU (side-stream weight and activation copies, chunked
    blocks) gives the resident FP8 model's gradients; block inputs wait in pinned host memory."""

    def setup(lowmem: bool) -> tuple[HunyuanDiT, list[torch.nn.Parameter]]:
        cfg = DiTConfig.preset("small", image_condition="token_replace")
        torch.manual_seed(0)
        model = HunyuanDiT(cfg).bfloat16()
        quantize_blocks_fp8(model)
        torch.manual_seed(1)
        params = inject_lora(model, LoRASettings(rank=8))
        with torch.no_grad():
            for p in params:
                p.normal_(0, 0.02)
        if lowmem:
            model.set_ffn_chunk_tokens(256)
            BlockSwap(model, "cuda", offload_activations=True)
        else:
            model.cuda()
        return model, params

    inputs = [t.cuda() for t in dit_inputs(DiTConfig.preset("small"), grid=(5, 16, 24), text_len=40)]
    clean = torch.randn(2, 16, 1, 16, 24, device="cuda")
    grads, outs = [], []
    for lowmem in (False, True):
        model, params = setup(lowmem)
        with torch.autocast("cuda", torch.bfloat16):
            out = model(*inputs, first_frame_clean=clean)
        if lowmem:
            swap = model.block_runner
            assert isinstance(swap, BlockSwap)
            hosts = [t for held, _ in swap.activations.values() for t in held]
            assert len(swap.activations) == len(swap.blocks) and all(t.is_pinned() for t in hosts)
        out.float().square().mean().backward()
        outs.append(out.float())
        grads.append(torch.cat([p.grad.flatten() for p in params]))  # type: ignore[union-attr]
    assert rel_err(outs[1], outs[0]) < 2e-2 and rel_err(grads[1], grads[0]) < 5e-2

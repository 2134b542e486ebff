"""Attention backends: per-sample prefixes without masks match the masked reference."""

from __future__ import annotations

import pytest
import torch

from model.attention import attention, flash_available


def _qkv(batch: int = 3, seq: int = 11, heads: int = 2, dim: int = 8):
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(batch, seq, heads, dim, generator=gen) for _ in range(3)]


@pytest.mark.parametrize(
    "lens",
    [None, [11, 11, 11], [11, 6, 1], [7, 7, 7], [9, 4, 9, 4, 4, 11], [1, 2, 3, 4, 5, 6, 11, 3]],
    ids=["none", "full", "each-own", "one-prefix", "grouped", "masked"],
)
def test_sdpa_matches_reference(lens: list[int] | None) -> None:
    q, k, v = _qkv(batch=len(lens) if lens else 3)
    ref = attention(q, k, v, lens, backend="reference")
    out = attention(q, k, v, lens, backend="sdpa")
    assert torch.allclose(out, ref, atol=1e-5)
    if lens is not None:
        for b, n in enumerate(lens):
            assert not out[b, n:].any()


def test_masked_call_gives_the_gradients_of_the_reference() -> None:
    lens = [1, 2, 3, 4, 5, 6, 11, 3]  # more distinct lengths than MAX_LENGTH_GROUPS: one masked call
    grads = []
    for backend in ("sdpa", "reference"):
        q, k, v = (t.requires_grad_() for t in _qkv(batch=len(lens)))
        attention(q, k, v, lens, backend=backend).square().sum().backward()
        grads.append(torch.cat([t.grad.flatten() for t in (q, k, v)]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_padding_keys_have_no_influence() -> None:
    q, k, v = _qkv(batch=1)
    k2, v2 = k.clone(), v.clone()
    k2[:, 5:] += 100
    v2[:, 5:] -= 100
    assert torch.allclose(attention(q, k, v, [5])[:, :5], attention(q, k2, v2, [5])[:, :5])


def test_bad_arguments() -> None:
    q, k, v = _qkv()
    with pytest.raises(ValueError, match="backend"):
        attention(q, k, v, backend="xformers")
    with pytest.raises(ValueError, match="seq_lens"):
        attention(q, k, v, [0, 3, 3])


@pytest.mark.skipif(
    not torch.cuda.is_available() or not flash_available(), reason="needs CUDA and flash_attn"
)
@pytest.mark.gpu
def test_flash_varlen_matches_sdpa_on_gpu() -> None:
    q, k, v = (t.cuda().bfloat16() for t in _qkv(seq=64, dim=64))
    lens = [64, 40, 3]
    assert torch.allclose(
        attention(q, k, v, lens, "flash").float(), attention(q, k, v, lens, "sdpa").float(), atol=2e-2
    )

"""Attention backends behind one function, `attention`.

Shape legend: B batch, S joint sequence length (video tokens then text tokens), H heads, Dh head dim.

Padding contract: every sample's real tokens are a *prefix* of the joint sequence (video tokens first,
then the real text tokens); `seq_lens[b]` is that prefix length. Tokens past the prefix are padding:
they are excluded as keys and their outputs are zero. No dense mask is built on the hot path:

- ``sdpa`` (default): if all samples have the same length, one `scaled_dot_product_attention` call
  on the trimmed prefix (PyTorch picks flash / cuDNN / memory-efficient); otherwise one unmasked
  call per sample on its prefix.
- ``flash``: `flash_attn_varlen_func` over the packed real tokens (only if `flash_attn` imports).
- ``sage``: SageAttention 1.0.6's 8-bit (INT8 QK, FP16 PV) Triton kernel on the same prefixes as
  ``sdpa`` (only if `sageattention` imports: a pure-Python wheel, CUDA + Triton; changes the output
  slightly).
- ``reference``: explicit softmax with a boolean key mask, in float32; slow, for tests.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

Backend = Literal["sdpa", "flash", "sage", "reference"]
BACKENDS: tuple[str, ...] = ("sdpa", "flash", "sage", "reference")


def flash_available() -> bool:
    """True when the optional `flash_attn` package can be imported."""
    return importlib.util.find_spec("flash_attn") is not None


def sage_available() -> bool:
    """True when the optional `sageattention` package can be imported."""
    return importlib.util.find_spec("sageattention") is not None


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    seq_lens: Sequence[int] | None = None,
    backend: str = "sdpa",
) -> torch.Tensor:
    """Bidirectional multi-head attention over per-sample prefixes.

    Args:
        q, k, v: (B, S, H, Dh), same dtype and device.
        seq_lens: python ints, one per sample, 1 <= len <= S: the real-token prefix length. None means
            every token is real. Python ints (not a tensor) so no device sync happens per call.
        backend: one of ``sdpa``, ``flash``, ``reference``.

    Returns:
        (B, S, H, Dh); rows past a sample's prefix are zero.
    """
    if backend not in BACKENDS:
        raise ValueError(f"attention backend {backend!r} is unknown; choose one of {BACKENDS}")
    batch, seq, _, _ = q.shape
    lens = [seq] * batch if seq_lens is None else [int(n) for n in seq_lens]
    if len(lens) != batch or min(lens) < 1 or max(lens) > seq:
        raise ValueError(f"seq_lens {lens} must hold {batch} lengths in [1, {seq}]")
    if backend == "reference":
        return _reference(q, k, v, lens)
    if backend == "flash":
        return _flash_varlen(q, k, v, lens)
    if backend == "sage":
        return _sdpa(q, k, v, lens, _sage_dense)
    return _sdpa(q, k, v, lens, _sdpa_dense)


def _sdpa_dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # (B, S, H, Dh) -> (B, H, S, Dh) views; SDPA accepts these strides without a copy.
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def _sage_dense(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    if not sage_available():
        raise RuntimeError("attention backend 'sage' needs the sageattention package; use backend='sdpa'")
    from sageattention import sageattn  # type: ignore[import-not-found]

    return sageattn(q, k, v, tensor_layout="NHD", is_causal=False)


DenseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# Above this many distinct prefix lengths in a batch, one masked SDPA call replaces a call per length
# (a batch of many short samples, e.g. a scaling sweep's 64 images with prompts of every length).
MAX_LENGTH_GROUPS = 4


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: list[int], dense: DenseFn) -> torch.Tensor:
    """`dense` (unmasked attention) on each sample's real prefix.

    One call when all lengths agree; one call per distinct length (those samples batched together)
    up to MAX_LENGTH_GROUPS lengths; beyond that, for SDPA, a single call with a key mask.
    """
    seq = q.shape[1]
    groups: dict[int, list[int]] = {}
    for b, n in enumerate(lens):
        groups.setdefault(n, []).append(b)
    if len(groups) == 1:
        n = lens[0]
        if n == seq:
            return dense(q, k, v)
        out = q.new_zeros(q.shape)
        out[:, :n] = dense(q[:, :n], k[:, :n], v[:, :n])
        return out
    if len(groups) > MAX_LENGTH_GROUPS and dense is _sdpa_dense:
        return _sdpa_key_masked(q, k, v, lens)
    out = q.new_zeros(q.shape)
    for n, rows in groups.items():
        if len(rows) == 1:
            b = rows[0]
            out[b : b + 1, :n] = dense(q[b : b + 1, :n], k[b : b + 1, :n], v[b : b + 1, :n])
        else:
            index = torch.tensor(rows, device=q.device)
            out[index, :n] = dense(q[index, :n], k[index, :n], v[index, :n])
    return out


def _sdpa_key_masked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: list[int]) -> torch.Tensor:
    """One SDPA call where each sample's keys past its prefix are masked; its padded rows are zeroed."""
    seq = q.shape[1]
    real = torch.arange(seq, device=q.device)[None, :] < torch.tensor(lens, device=q.device)[:, None]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=real[:, None, None, :]
    ).transpose(1, 2)
    return out * real[:, :, None, None].to(out.dtype)


def _flash_varlen(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: list[int]) -> torch.Tensor:
    if not flash_available():
        raise RuntimeError("attention backend 'flash' needs the flash_attn package; use backend='sdpa'")
    from flash_attn import flash_attn_varlen_func  # type: ignore[import-not-found]

    batch, seq, heads, dim = q.shape
    # Pack the real prefixes into one (total, H, Dh) sequence; cu_seqlens marks sample boundaries.
    q_p = torch.cat([q[b, :n] for b, n in enumerate(lens)])
    k_p = torch.cat([k[b, :n] for b, n in enumerate(lens)])
    v_p = torch.cat([v[b, :n] for b, n in enumerate(lens)])
    cu = torch.tensor([0, *torch.tensor(lens).cumsum(0).tolist()], device=q.device, dtype=torch.int32)
    packed = flash_attn_varlen_func(q_p, k_p, v_p, cu, cu, max(lens), max(lens))
    out = q.new_zeros(batch, seq, heads, dim)
    for b, (n, start) in enumerate(zip(lens, cu[:-1].tolist(), strict=True)):
        out[b, :n] = packed[start : start + n]
    return out


def _reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: list[int]) -> torch.Tensor:
    batch, seq, _, dim = q.shape
    key_ok = torch.arange(seq, device=q.device)[None, :] < torch.tensor(lens, device=q.device)[:, None]
    logits = torch.einsum("bqhd,bkhd->bhqk", q.float(), k.float()) / dim**0.5
    logits = logits.masked_fill(~key_ok[:, None, None, :], float("-inf"))
    out = torch.einsum("bhqk,bkhd->bqhd", logits.softmax(-1), v.float())
    return (out * key_ok[:, :, None, None]).to(q.dtype)

"""Sequence-chunked pieces of the DiT blocks: the low-memory mode's bounded activation memory.

With `HunyuanDiT.set_ffn_chunk_tokens(n)` the blocks run their per-token work (the linears, the
MLP, QK norm + RoPE, the residuals) over slices of at most n tokens, so the widest intermediates
(the single-stream block's fused linear1 output, 7 × width; the MLP hidden, 4 × width; RoPE's
float32 pairs) exist for one slice at a time instead of for the whole sequence. Attention still
sees the whole sequence. Per-token maths is unchanged, so the output equals the unchunked
block's up to matmul rounding.

Under autograd each chunk of the feed-forward is a (non-reentrant) checkpoint: backward keeps the
chunk's input only and recomputes its MLP, so a block's backward also holds one chunk's MLP hidden
instead of the whole sequence's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from model.dit_layers import RMSNorm, apply_rope


def token_spans(length: int, chunk: int) -> list[tuple[int, int]]:
    """[start, stop) slices of at most `chunk` tokens covering range(length)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 token, got {chunk}")
    return [(start, min(start + chunk, length)) for start in range(0, length, chunk)]


def first_count(n_first: int, start: int, stop: int) -> int:
    """How many of the tokens [start, stop) are among the first `n_first` (I2V token_replace)."""
    return min(max(n_first - start, 0), stop - start)


def run_chunk(fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
    """fn(*args); under autograd as a checkpoint (saves the inputs, recomputes in backward)."""
    if torch.is_grad_enabled():
        out = checkpoint(fn, *args, use_reentrant=False)
        assert isinstance(out, torch.Tensor)
        return out
    return fn(*args)


def linear_rows(linear: nn.Module, x: torch.Tensor, rows: slice) -> torch.Tensor:
    """Output features `rows` (a contiguous slice) of `linear` on x, without computing the others.

    `linear` is an nn.Linear or a quantised linear with `forward_rows` (model.fp8); its LoRA
    adapters (`linear.lora`, model.lora) add their update to those rows, as their hook would.
    """
    if isinstance(linear, nn.Linear):
        bias = None if linear.bias is None else linear.bias[rows]
        out = F.linear(x, linear.weight[rows], bias)
    else:
        forward_rows = getattr(linear, "forward_rows", None)
        if forward_rows is None:
            raise TypeError(
                f"{type(linear).__name__} cannot compute a slice of its outputs (no forward_rows)"
            )
        out = forward_rows(x, rows)
    adapters = getattr(linear, "lora", None)
    return out if adapters is None else adapters.delta(x, out, rows)


def norm_rope_chunked(
    x: torch.Tensor,
    norm: RMSNorm,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    chunk: int,
    out: torch.Tensor,
) -> torch.Tensor:
    """out[:, a:b] = rope(norm(x[:, a:b])) per token slice; x, out (B, S, H, Dh), tables (S, Dh).

    Without autograd `out` may be `x` itself (each slice is read before it is written), so no
    second copy of q or k exists; RoPE's float32 pairs exist for one slice at a time.
    """
    for start, stop in token_spans(x.shape[1], chunk):
        piece = norm(x[:, start:stop])
        if rope is not None:
            piece = apply_rope(piece, rope[0][start:stop], rope[1][start:stop])
        out[:, start:stop] = piece
    return out


def gather_chunks(
    pieces: Iterable[tuple[int, int, torch.Tensor]], length: int, concatenate: bool = False
) -> torch.Tensor:
    """One (B, length, ...) tensor from (start, stop, piece) slices along dim 1, in the pieces' dtype.

    Each piece is copied into one buffer and dropped at once. `concatenate` (used under autograd
    for pieces that backward does not need, the checkpointed chunks' outputs): keep them and
    concatenate, whose backward hands each piece a view of the gradient, where copies into slices
    of a buffer clone the whole gradient once per piece.
    """
    if concatenate:
        ordered = [piece for _, _, piece in pieces]
        if not ordered:
            raise ValueError("no chunk to gather (empty sequence)")
        return torch.cat(ordered, dim=1)
    out: torch.Tensor | None = None
    for start, stop, piece in pieces:
        if out is None:
            out = piece.new_empty(piece.shape[0], length, *piece.shape[2:])
        out[:, start:stop] = piece
    if out is None:
        raise ValueError("no chunk to gather (empty sequence)")
    return out

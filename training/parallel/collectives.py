"""Differentiable collectives of Ulysses sequence parallelism, over one process group of size P.

Shape legend: B batch, s local sequence length (this rank's tokens), P group size, H heads (all),
h = H / P heads per rank, Dh head dim, F features.

Gradient convention (all of training.parallel follows it): values that every rank holds a copy of
("replicated", e.g. the text tokens and the gathered output) carry, on each rank, a *share* of the
gradient, and the shares of the group sum to P times the gradient. Concretely the backward of every
all-gather here is a reduce-scatter (sum). When every rank computes the same loss from replicated
outputs, the *mean* over the group of any parameter's gradient equals the single-process gradient,
which is what DDP and DeepSpeed (not told about the sequence group) compute when they average
gradients over all ranks.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from einops import rearrange
from torch.distributed import ProcessGroup

Group = ProcessGroup | None


def _all_to_all(x: torch.Tensor, group: Group) -> torch.Tensor:
    """Exchange chunk p of dim 0 (size P) with rank p: out[p] = what rank p sent as its chunk[rank]."""
    x = x.contiguous()
    out = torch.empty_like(x)  # contiguous like x: the collective writes flat memory
    dist.all_to_all_single(out, x, group=group)
    return out


def _reduce_scatter_dim0(x: torch.Tensor, group: Group) -> torch.Tensor:
    """(P, ...) per rank -> (...) = sum over ranks of their chunk [rank]."""
    out = x.new_empty(x.shape[1:])
    # The collectives take flat concatenations along dim 0: (P·d0, ...) -> (d0, ...).
    # torch >= 2.13 renamed reduce_scatter_tensor to reduce_scatter_single (the old name warns);
    # the GPU machines run 2.11, which has only the old name.
    reduce_scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    reduce_scatter(out, x.reshape(-1, *x.shape[2:]).contiguous(), group=group)
    return out


def _all_gather_dim0(x: torch.Tensor, group: Group) -> torch.Tensor:
    """(...) per rank -> (P, ...) stacked in rank order."""
    size = dist.get_world_size(group)
    out = x.new_empty((size * x.shape[0], *x.shape[1:]))
    all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    all_gather(out, x.contiguous(), group=group)
    return out.unflatten(0, (size, x.shape[0]))


def _seq_to_heads(x: torch.Tensor, group: Group) -> torch.Tensor:
    size = dist.get_world_size(group)
    chunks = rearrange(x, "b s (p h) d -> p b s h d", p=size)
    return rearrange(_all_to_all(chunks, group), "p b s h d -> b (p s) h d")


def _heads_to_seq(x: torch.Tensor, group: Group) -> torch.Tensor:
    size = dist.get_world_size(group)
    chunks = rearrange(x, "b (p s) h d -> p b s h d", p=size)
    return rearrange(_all_to_all(chunks, group), "p b s h d -> b s (p h) d")


class _SeqToHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return _seq_to_heads(x, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _heads_to_seq(grad, ctx.group), None


class _HeadsToSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return _heads_to_seq(x, group)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _seq_to_heads(grad, ctx.group), None


class _GatherHeads(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return rearrange(_all_gather_dim0(x, group), "p b s h d -> b s (p h) d")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        size = dist.get_world_size(ctx.group)
        chunks = rearrange(grad, "b s (p h) d -> p b s h d", p=size)
        return _reduce_scatter_dim0(chunks, ctx.group), None


class _GatherTokens(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Group) -> torch.Tensor:
        ctx.group = group
        return rearrange(_all_gather_dim0(x, group), "p b s f -> b (p s) f")

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        size = dist.get_world_size(ctx.group)
        chunks = rearrange(grad, "b (p s) f -> p b s f", p=size)
        return _reduce_scatter_dim0(chunks, ctx.group), None


def seq_to_heads(x: torch.Tensor, group: Group = None) -> torch.Tensor:
    """All-to-all (B, s, H, Dh) sequence shards -> (B, P·s, H/P, Dh): the whole sequence, this rank's heads.

    Rank r receives head block r (heads r·h … r·h + h − 1) of every rank's shard, concatenated in rank
    order along the sequence. Backward is the inverse exchange.
    """
    return _SeqToHeads.apply(x, group)  # type: ignore[no-any-return]


def heads_to_seq(x: torch.Tensor, group: Group = None) -> torch.Tensor:
    """Inverse of `seq_to_heads`: (B, P·s, H/P, Dh) -> (B, s, H, Dh)."""
    return _HeadsToSeq.apply(x, group)  # type: ignore[no-any-return]


def gather_heads(x: torch.Tensor, group: Group = None) -> torch.Tensor:
    """All-gather over heads: (B, s, H/P, Dh) head block per rank -> (B, s, H, Dh) on every rank.

    Backward: reduce-scatter (sum) of the replicated gradient shares (see the module docstring).
    """
    return _GatherHeads.apply(x, group)  # type: ignore[no-any-return]


def gather_tokens(x: torch.Tensor, group: Group = None) -> torch.Tensor:
    """All-gather over tokens: (B, s, F) per rank -> (B, P·s, F) in rank order on every rank.

    Backward: reduce-scatter (sum) of the replicated gradient shares (see the module docstring).
    """
    return _GatherTokens.apply(x, group)  # type: ignore[no-any-return]

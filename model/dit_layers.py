"""Building blocks of the HunyuanVideo DiT: embeddings, modulation, 3D RoPE, QK RMSNorm, token refiner.

Shape legend: B batch, N video tokens, L text tokens, S = N + L, D width, H heads, Dh head dim,
C_t LLM text-state width. Parameter names follow the official release (`time_in.mlp.0`, ...), so the
official checkpoint loads without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.attention import attention


def timestep_sinusoids(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) float timesteps (any scale, e.g. [0, 1000]) -> (B, dim) float32 [cos | sin] features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimestepEmbedder(nn.Module):
    """Sinusoids (256) -> Linear -> SiLU -> Linear: (B,) -> (B, D). Keys `mlp.0`, `mlp.2`."""

    def __init__(self, hidden: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        first: nn.Linear = self.mlp[0]  # type: ignore[assignment]
        return self.mlp(timestep_sinusoids(t, self.freq_dim).to(first.weight.dtype))


class MLPEmbedder(nn.Module):
    """Linear -> SiLU -> Linear: (B, C_in) -> (B, D).

    The two layers are registered under `names`, as the official release calls them: `in_layer`,
    `out_layer` for the pooled text vector; `linear_1`, `linear_2` for the token refiner's text
    projection.
    """

    def __init__(self, in_dim: int, hidden: int, names: tuple[str, str] = ("in_layer", "out_layer")) -> None:
        super().__init__()
        self.names = names
        self.add_module(names[0], nn.Linear(in_dim, hidden))
        self.add_module(names[1], nn.Linear(hidden, hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = (getattr(self, name) for name in self.names)
        return second(F.silu(first(x)))


class ModulationLinear(nn.Module):
    """SiLU -> Linear(D, factor·D) on the conditioning vector; key `linear`. (B, D) -> factor × (B, D)."""

    def __init__(self, hidden: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.linear = nn.Linear(hidden, factor * hidden)

    def forward(self, vec: torch.Tensor) -> list[torch.Tensor]:
        return list(self.linear(F.silu(vec)).chunk(self.factor, dim=-1))


class RMSNorm(nn.Module):
    """RMS norm over the last dim with a learned scale (per-head QK norm, eps 1e-6)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The fused kernel accumulates in float32 and makes one pass (the per-head QK norm runs on
        # every attention input, so the unfused float32 round trips were a measurable cost).
        return F.rms_norm(x, (x.shape[-1],), self.weight.to(x.dtype), self.eps)


def modulate(
    x: torch.Tensor,
    shift: torch.Tensor,
    scale: torch.Tensor,
    first: tuple[torch.Tensor, torch.Tensor] | None = None,
    n_first: int = 0,
) -> torch.Tensor:
    """x (B, S, D) * (1 + scale) + shift with (B, D) parameters.

    `first` = (shift0, scale0) modulates the first `n_first` tokens instead (I2V token_replace: the
    clean first latent frame is modulated with t = 0).
    """
    if first is None:
        return torch.addcmul(shift[:, None], x, 1 + scale[:, None])
    head = torch.addcmul(first[0][:, None], x[:, :n_first], 1 + first[1][:, None])
    tail = torch.addcmul(shift[:, None], x[:, n_first:], 1 + scale[:, None])
    return torch.cat([head, tail], dim=1)


def gated_residual(
    residual: torch.Tensor,
    update: torch.Tensor,
    gate: torch.Tensor,
    first_gate: torch.Tensor | None = None,
    n_first: int = 0,
) -> torch.Tensor:
    """residual + gate * update with a (B, D) gate; `first_gate` applies to the first `n_first` tokens."""
    if first_gate is None:
        return torch.addcmul(residual, update, gate[:, None])
    head = torch.addcmul(residual[:, :n_first], update[:, :n_first], first_gate[:, None])
    tail = torch.addcmul(residual[:, n_first:], update[:, n_first:], gate[:, None])
    return torch.cat([head, tail], dim=1)


def rope_tables(
    grid: tuple[int, int, int],
    dims: Sequence[int],
    theta: float,
    num_text: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (S, Dh) float32 for the joint sequence [video (t,h,w row-major); text].

    Video token (t, h, w) gets interleaved-pair rotations from its three axes (dims[0] channels for
    t, dims[1] for h, dims[2] for w). Text rows are the identity (cos 1, sin 0): RoPE then touches
    video tokens only, and a single-stream block rotates the joint sequence without splitting it.
    """
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in grid]
    coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0).reshape(3, -1)  # (3, N)
    cos_parts, sin_parts = [], []
    for axis, dim in enumerate(dims):
        freqs = 1.0 / theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
        angles = torch.outer(coords[axis], freqs)  # (N, dim/2)
        cos_parts.append(angles.cos().repeat_interleave(2, dim=1))
        sin_parts.append(angles.sin().repeat_interleave(2, dim=1))
    cos, sin = torch.cat(cos_parts, dim=1), torch.cat(sin_parts, dim=1)  # (N, Dh)
    if num_text:
        cos = torch.cat([cos, cos.new_ones(num_text, cos.shape[1])])
        sin = torch.cat([sin, sin.new_zeros(num_text, sin.shape[1])])
    return cos, sin


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of x (B, S', H, Dh) by tables (S', Dh); maths in float32.

    Pair (x0, x1) -> (x0·cos - x1·sin, x1·cos + x0·sin), written straight into x's dtype: the same
    float32 arithmetic as rotating the whole vector, with about half the memory passes.
    """
    pairs = x.unflatten(-1, (-1, 2))  # (B, S', H, Dh/2, 2) view
    c, s = cos[None, :, None, ::2], sin[None, :, None, ::2]  # each pair shares one angle
    x0, x1 = pairs[..., 0].float(), pairs[..., 1].float()
    out = torch.empty_like(pairs)
    out[..., 0] = x0 * c - x1 * s
    out[..., 1] = x1 * c + x0 * s
    return out.flatten(-2)


class RefinerMLP(nn.Module):
    """fc1 -> act -> fc2 (keys `fc1`, `fc2`)."""

    def __init__(self, hidden: int, mlp_hidden: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, mlp_hidden)
        self.fc2 = nn.Linear(mlp_hidden, hidden)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        h = F.silu(h) if self.act == "silu" else F.gelu(h, approximate="tanh")
        return self.fc2(h)


class RefinerBlock(nn.Module):
    """Bidirectional self-attention block over text tokens, gated by the conditioning vector."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float, backend: str) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.backend = backend
        self.norm1 = nn.LayerNorm(hidden, eps=1e-6)
        self.self_attn_qkv = nn.Linear(hidden, 3 * hidden)
        self.self_attn_proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=1e-6)
        self.mlp = RefinerMLP(hidden, int(hidden * mlp_ratio), act="silu")
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, vec: torch.Tensor, lens: Sequence[int]) -> torch.Tensor:
        gate_msa, gate_mlp = self.adaLN_modulation(vec).chunk(2, dim=-1)
        qkv = self.self_attn_qkv(self.norm1(x))
        q, k, v = rearrange(qkv, "b l (three h d) -> three b l h d", three=3, h=self.num_heads)
        attn = attention(q, k, v, lens, self.backend).flatten(2)
        x = torch.addcmul(x, self.self_attn_proj(attn), gate_msa[:, None])
        return torch.addcmul(x, self.mlp(self.norm2(x)), gate_mlp[:, None])


class IndividualTokenRefiner(nn.Module):
    def __init__(self, hidden: int, num_heads: int, depth: int, mlp_ratio: float, backend: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(RefinerBlock(hidden, num_heads, mlp_ratio, backend) for _ in range(depth))


class TokenRefiner(nn.Module):
    """LLM text states (B, L, C_t) -> refined text tokens (B, L, D); key prefix `txt_in`.

    Conditioning = embedding of the diffusion timestep + projection of the mask-averaged text states.
    Only each sample's first `lens[b]` tokens are real; padded rows come out as garbage-free zeros
    of attention plus their own MLP (they are never attended to and are dropped by the caller).
    """

    def __init__(self, in_dim: int, hidden: int, num_heads: int, depth: int, backend: str) -> None:
        super().__init__()
        self.input_embedder = nn.Linear(in_dim, hidden)
        self.t_embedder = TimestepEmbedder(hidden)
        self.c_embedder = MLPEmbedder(in_dim, hidden, names=("linear_1", "linear_2"))
        self.individual_token_refiner = IndividualTokenRefiner(hidden, num_heads, depth, 4.0, backend)

    def forward(
        self, text: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, lens: Sequence[int]
    ) -> torch.Tensor:
        weights = mask.float().unsqueeze(-1)
        pooled = ((text.float() * weights).sum(1) / weights.sum(1)).to(text.dtype)  # (B, C_t)
        vec = self.t_embedder(t) + self.c_embedder(pooled)
        x = self.input_embedder(text)
        for block in self.individual_token_refiner.blocks:
            x = block(x, vec, lens)
        return x

"""Ulysses sequence-parallel attention over [video shards; replicated text] (DeepSpeed-Ulysses layout).

Shape legend: B batch, P sequence-parallel group size, r this rank, T latent frames (after the
temporal patch), hw tokens per frame, N = T·hw video tokens in row-major (t, h, w) order,
n = ceil(N / P) local video tokens (padding included), L text tokens (replicated), H heads,
h = H / P, Dh head dim.

Layout: rank r holds the contiguous video tokens [r·n, (r+1)·n), so its RoPE positions are the
global (t, h, w) ones of those tokens, followed by all L text tokens. When P divides T this is
exactly T/P whole latent frames per rank; otherwise a frame may straddle two ranks, and when P
does not divide N the last rank is completed with P·n − N < P padding tokens (zeros). Padding is
a suffix of the global video sequence, so attention drops it and never sees it as keys. (Padding
whole frames instead would waste up to a frame per rank: 7 of 40 frames for 129 video frames on
8 GPUs; `whole_frames=True` asks for the frame split and refuses T not divisible by P.)

Attention on each rank: one all-to-all turns (B, n, H) video shards of q, k, v into the whole video
sequence with this rank's h heads (B, P·n, h); the replicated text q/k/v contribute their head
block r; `model.attention.attention` runs on [N video; L text] with the global per-sample lengths;
the video output goes back with the inverse all-to-all and the text output is all-gathered over
heads, so text stays replicated. Per layer that is 2 all-to-alls of video activations (q, k, v
stacked in one) and one all-gather of the (small) text output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.attention import attention
from training.parallel.collectives import Group, gather_heads, heads_to_seq, seq_to_heads


class SequenceParallelError(ValueError):
    """A model or input that this sequence-parallel layout cannot split (message says why and what to change)."""


def check_heads(num_heads: int, world: int) -> None:
    """Ulysses gives each rank num_heads / P heads: P must divide the head count."""
    if world < 1:
        raise SequenceParallelError(f"sequence-parallel size must be >= 1, got {world}")
    if num_heads % world:
        options = [p for p in range(1, num_heads + 1) if num_heads % p == 0]
        raise SequenceParallelError(
            f"num_heads {num_heads} is not divisible by the sequence-parallel size {world}: Ulysses gives each "
            f"rank num_heads / P heads; use a group size in {options}"
        )


@dataclass(frozen=True)
class ShardPlan:
    """How one forward's video tokens are split over the group (see the module docstring).

    Attributes:
        world: group size P; rank: this rank r in [0, P).
        frames: latent frames T of the token grid; tokens_per_frame: hw.
    """

    world: int
    rank: int
    frames: int
    tokens_per_frame: int

    @property
    def num_video(self) -> int:
        """N: real video tokens of the whole sequence."""
        return self.frames * self.tokens_per_frame

    @property
    def local_tokens(self) -> int:
        """n = ceil(N / P): video tokens on each rank, padding included (the same on every rank)."""
        return -(-self.num_video // self.world)

    @property
    def padded_total(self) -> int:
        """P·n: the video sequence after padding (N + fewer than P tokens)."""
        return self.world * self.local_tokens

    @property
    def start(self) -> int:
        """Global index of this rank's first video token."""
        return self.rank * self.local_tokens

    @property
    def local_real(self) -> int:
        """Real (non-padding) video tokens on this rank, in [0, n]."""
        return max(0, min(self.local_tokens, self.num_video - self.start))

    @property
    def local_first_frame_tokens(self) -> int:
        """Tokens of global latent frame 0 on this rank (a prefix of its tokens): I2V token_replace."""
        return max(0, min(self.local_real, self.tokens_per_frame - self.start))


def plan_video_shards(
    grid: tuple[int, int, int], world: int, rank: int, whole_frames: bool = False
) -> ShardPlan:
    """Split a (T, h, w) token grid's video tokens over `world` ranks (see the module docstring).

    Raises SequenceParallelError when there are fewer video tokens than ranks, or when
    `whole_frames` is asked for and P does not divide T.
    """
    frames, height, width = grid
    if not 0 <= rank < world:
        raise SequenceParallelError(f"rank {rank} is outside the sequence-parallel group of size {world}")
    if frames * height * width < world:
        raise SequenceParallelError(
            f"{frames * height * width} video tokens cannot be split over {world} sequence-parallel ranks: "
            "use a smaller group for such small videos"
        )
    if whole_frames and frames % world:
        raise SequenceParallelError(
            f"{frames} latent frames are not divisible by the sequence-parallel size {world} (whole_frames=True); "
            f"pick video frames with (frames - 1) / 4 + 1 divisible by {world}, or allow token shards "
            "(whole_frames=False)"
        )
    return ShardPlan(world, rank, frames, height * width)


def ulysses_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    seq_lens: Sequence[int] | None,
    backend: str,
    plan: ShardPlan,
    group: Group,
) -> torch.Tensor:
    """Attention of this rank's [n video; L text] tokens against the whole [N video; L text] sequence.

    Args:
        q, k, v: (B, n + L, H, Dh): this rank's video tokens (per `plan`, padding included), then the
            replicated text tokens (identical on every rank).
        seq_lens: per-sample real prefix of the *local* sequence, n + (real text tokens); None = all.
        backend: passed to `model.attention.attention`.
        plan: the forward's `ShardPlan`; group: the sequence-parallel process group.

    Returns:
        (B, n + L, H, Dh): equal to rows [start, start + n) and the text rows of single-device
        attention over the whole sequence; padding rows and rows past a sample's prefix are zero.
    """
    batch, local_len, heads, _ = q.shape
    n, total = plan.local_tokens, plan.num_video
    if local_len < n or heads % plan.world:
        raise SequenceParallelError(
            f"attention got {local_len} tokens x {heads} heads; the shard plan expects >= {n} local video tokens "
            f"and heads divisible by {plan.world} (was the forward's plan replaced mid-step?)"
        )
    h = heads // plan.world
    lens = [local_len] * batch if seq_lens is None else [int(x) for x in seq_lens]
    global_lens = [x - n + total for x in lens]

    # One all-to-all for q, k and v together (stacked on the batch dim): fewer, larger messages.
    qkv_video = seq_to_heads(torch.cat([q[:, :n], k[:, :n], v[:, :n]]), group)[:, :total]  # (3B, N, h, Dh)
    heads_r = slice(plan.rank * h, (plan.rank + 1) * h)
    q_full, k_full, v_full = (
        torch.cat([video, text[:, n:, heads_r]], dim=1)
        for video, text in zip(qkv_video.chunk(3), (q, k, v), strict=True)
    )
    out = attention(q_full, k_full, v_full, global_lens, backend)  # (B, N + L, h, Dh)
    video, text = out[:, :total], out[:, total:]
    if plan.padded_total > total:
        video = F.pad(video, (0, 0, 0, 0, 0, plan.padded_total - total))
    return torch.cat([heads_to_seq(video, group), gather_heads(text, group)], dim=1)

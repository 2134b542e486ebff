"""`parallelize_dit`: Ulysses sequence parallelism applied to a `model.dit.HunyuanDiT` from outside.

The model is written for one device and exposes two hooks (model.dit): each dual/single-stream
block's `attention_fn` (default `model.attention.attention`) and the model's `token_sharding`
(default None), called right after patch embedding (`shard`) and right before unpatchify
(`gather`). `parallelize_dit(model, group)` points both at one `DiTSequenceParallel` object:

- shard: keep this rank's contiguous range of the patch-embedded video tokens (whole latent
  frames when P divides T; fewer than P padding tokens complete the last rank when P does not
  divide N), slice the RoPE tables to those tokens' global (t, h, w) positions, and hand each rank
  the number of I2V token_replace first-frame tokens it holds;
- attention: `ulysses_attention` in every dual- and single-stream block (the text-only token
  refiner runs replicated, as it is);
- gather: all-gather the final layer's per-token outputs, drop padding, so every rank returns the
  full (B, C, T, H, W) prediction.

Every rank must call the model with identical inputs (same latents, timesteps and text): in
training, ranks of one sequence group read the same batch and draw the same noise; in serving,
the same request and seed. Gradients follow training.parallel.collectives: average them over the
group (DDP / DeepSpeed over all ranks do) to get the single-device gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F

from model.attention import attention
from model.dit import DoubleStreamBlock, HunyuanDiT, SingleStreamBlock
from training.parallel.collectives import Group, gather_tokens
from training.parallel.ulysses import (
    SequenceParallelError,
    ShardPlan,
    check_heads,
    plan_video_shards,
    ulysses_attention,
)

Rope = tuple[torch.Tensor, torch.Tensor]


class DiTSequenceParallel:
    """The hook object `parallelize_dit` installs (model.dit's `token_sharding` + blocks' `attention_fn`).

    One forward at a time: `shard` records the forward's `ShardPlan`, which the blocks' attention
    and `gather` (and activation-checkpoint recomputation in that step's backward) then use.
    """

    def __init__(self, group: Group, whole_frames: bool = False, check_inputs: bool = True) -> None:
        if not dist.is_initialized():
            raise SequenceParallelError(
                "sequence parallelism needs torch.distributed initialised (init_process_group)"
            )
        self.group = group
        self.world = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.whole_frames = whole_frames
        self.check_inputs = check_inputs
        self.plan: ShardPlan | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> DiTSequenceParallel:
        # A copied model (an export, an EMA copy) shares the group; process groups cannot be copied.
        return self

    def _check_same_inputs(self, img: torch.Tensor, grid: tuple[int, int, int], num_text: int) -> None:
        # Ranks that disagree on shapes would hang in the collectives below, and ranks fed different
        # latents (noise seeded by the global rank instead of the data rank, say) would silently
        # mix samples. One tiny all-gather per forward compares the shapes and a sum of the
        # patch-embedded latents (identical inputs and weights give a bitwise-identical sum; a bf16
        # -> fp32 sum on CUDA reads img once without a converted copy).
        total = img.detach().sum(dtype=torch.float32).double()
        shape = torch.tensor([img.shape[0], *grid, num_text], dtype=torch.float64, device=img.device)
        mine = torch.cat([shape, total[None]])
        every = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(every, mine, group=self.group)
        rows = [t.tolist() for t in every]
        shapes = [tuple(int(x) for x in row[:5]) for row in rows]
        if len(set(shapes)) > 1:
            raise SequenceParallelError(
                "ranks of one sequence-parallel group got different inputs (batch, T, h, w, text tokens): "
                f"{shapes}; every rank must call the model with the same batch"
            )
        if not all(row[5] == rows[0][5] or (math.isnan(row[5]) and math.isnan(rows[0][5])) for row in rows):
            raise SequenceParallelError(
                "ranks of one sequence-parallel group got different latents (or patch-embedding weights): "
                "seed data and noise by the data-parallel rank (ParallelGroups.data_rank), not the global rank"
            )

    def shard(
        self, img: torch.Tensor, rope: Rope, grid: tuple[int, int, int], n_first: int
    ) -> tuple[torch.Tensor, Rope, int]:
        """This rank's video tokens: img (B, N, D) -> (B, n, D); RoPE (N + L, Dh) -> (n + L, Dh)."""
        plan = plan_video_shards(grid, self.world, self.rank, self.whole_frames)
        cos, sin = rope
        num_text = cos.shape[0] - plan.num_video
        if self.check_inputs:
            self._check_same_inputs(img, grid, num_text)
        self.plan = plan
        start, real, n = plan.start, plan.local_real, plan.local_tokens
        local = img[:, start : start + real]
        if real < n:  # padding tokens: zeros, identity rotation
            local = F.pad(local, (0, 0, 0, n - real))
        pad = n - real

        def rows(table: torch.Tensor, fill: float) -> torch.Tensor:
            video = table[start : start + real]
            padding = table.new_full((pad, table.shape[1]), fill)
            return torch.cat([video, padding, table[plan.num_video :]])

        first = plan.local_first_frame_tokens if n_first else 0
        return local, (rows(cos, 1.0), rows(sin, 0.0)), first

    def attention(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        seq_lens: Sequence[int] | None = None,
        backend: str = "sdpa",
    ) -> torch.Tensor:
        """Drop-in for `model.attention.attention` inside the blocks (see `ulysses_attention`)."""
        if self.plan is None:
            raise SequenceParallelError("sequence-parallel attention ran before the model's token shard step")
        return ulysses_attention(q, k, v, seq_lens, backend, self.plan, self.group)

    def gather(self, out: torch.Tensor) -> torch.Tensor:
        """Per-token outputs (B, n, F) of every rank -> (B, N, F), padding dropped."""
        assert self.plan is not None, "gather before shard"
        return gather_tokens(out, self.group)[:, : self.plan.num_video]


def _attention_blocks(model: HunyuanDiT) -> list[DoubleStreamBlock | SingleStreamBlock]:
    return [m for m in model.modules() if isinstance(m, DoubleStreamBlock | SingleStreamBlock)]


def parallelize_dit(
    model: HunyuanDiT, group: Group = None, *, whole_frames: bool = False, check_inputs: bool = True
) -> HunyuanDiT:
    """Run `model` Ulysses sequence-parallel over `group` (None = the default group); in place, returned.

    Args:
        model: a single-device HunyuanDiT (before DeepSpeed / DDP wrapping, after moving it to its device).
        group: the sequence-parallel process group (`sequence_parallel_groups` builds it with DP).
        whole_frames: require whole latent frames per rank (raise SequenceParallelError when P does
            not divide T) instead of contiguous token ranges with < P padding tokens.
        check_inputs: compare input shapes across the group at each forward (one tiny all-gather),
            so a rank with a different batch fails with a message instead of hanging.

    Raises:
        SequenceParallelError: the head count is not divisible by the group size, or torch.distributed
            is not initialised. Input-size problems (fewer video tokens than ranks, frames with
            whole_frames) are raised at the forward, before any collective of the step.
    """
    if not isinstance(model, HunyuanDiT):
        raise SequenceParallelError(
            f"parallelize_dit takes a model.dit.HunyuanDiT, got {type(model).__name__}"
        )
    hooks = DiTSequenceParallel(group, whole_frames=whole_frames, check_inputs=check_inputs)
    check_heads(model.config.num_heads, hooks.world)
    model.token_sharding = hooks
    for block in _attention_blocks(model):
        block.attention_fn = hooks.attention
    return model


def remove_sequence_parallel(model: HunyuanDiT) -> HunyuanDiT:
    """Undo `parallelize_dit`: single-device attention and no token sharding (in place, returned)."""
    model.token_sharding = None
    for block in _attention_blocks(model):
        block.attention_fn = attention
    return model


def is_sequence_parallel(model: HunyuanDiT) -> bool:
    """True when `parallelize_dit` was applied to `model`."""
    return isinstance(getattr(model, "token_sharding", None), DiTSequenceParallel)

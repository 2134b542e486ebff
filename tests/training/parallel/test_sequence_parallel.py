"""Ulysses sequence-parallel attention with 2 gloo processes equals single-process attention.

One spawn of 2 ranks runs every scenario (process start dominates the cost); each rank writes its
measured errors, and the tests below assert on them.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist

from model.attention import attention
from tests.training.parallel.ranks import run_ranks
from training.parallel.collectives import gather_tokens
from training.parallel.launch import sequence_parallel_groups
from training.parallel.ulysses import (
    SequenceParallelError,
    check_heads,
    plan_video_shards,
    ulysses_attention,
)

WORLD = 2
HEADS, HEAD_DIM = 4, 8


def _scenario(
    frames: int, hw: int, text_lens: list[int], text_max: int, world: int, rank: int
) -> dict[str, float]:
    """SP vs full attention outputs and gradients for one (frames, text) layout; returns max errors."""
    batch = len(text_lens)
    plan = plan_video_shards((frames, 1, hw), world, rank)
    n_video, n = plan.num_video, plan.local_tokens
    gen = torch.Generator().manual_seed(frames * 100 + text_max)
    q, k, v = (torch.randn(batch, n_video + text_max, HEADS, HEAD_DIM, generator=gen) for _ in range(3))
    weight = torch.randn(batch, n_video + text_max, HEADS, HEAD_DIM, generator=gen)
    full_lens = [n_video + t for t in text_lens]

    # Reference: one device, whole sequence; loss = <out, weight>.
    ref_in = [t.clone().requires_grad_(True) for t in (q, k, v)]
    ref_out = attention(*ref_in, full_lens, "sdpa")
    (ref_out * weight).sum().backward()

    def local(t: torch.Tensor) -> torch.Tensor:
        video = t[:, plan.start : plan.start + plan.local_real]
        pad = torch.zeros(batch, n - plan.local_real, HEADS, HEAD_DIM)
        return torch.cat([video, pad, t[:, n_video:]], dim=1)

    sp_in = [local(t).detach().requires_grad_(True) for t in (q, k, v)]
    local_lens = [n + t for t in text_lens]
    sp_out = ulysses_attention(*sp_in, local_lens, "sdpa", plan, None)
    # Every rank computes the same loss from replicated outputs (the gathered video + the text).
    video_all = gather_tokens(sp_out[:, :n].flatten(2), None)[:, :n_video].unflatten(2, (HEADS, HEAD_DIM))
    out_all = torch.cat([video_all, sp_out[:, n:]], dim=1)
    (out_all * weight).sum().backward()

    errors = {
        "forward_full": (out_all - ref_out).abs().max().item(),
        "forward_local_video": (sp_out[:, : plan.local_real] - local(ref_out)[:, : plan.local_real])
        .abs()
        .max()
        .item(),
        "padding_rows": sp_out[:, plan.local_real : n].abs().max().item() if plan.local_real < n else 0.0,
    }
    for name, sp_t, ref_t in zip("qkv", sp_in, ref_in, strict=True):
        assert sp_t.grad is not None and ref_t.grad is not None
        # Convention: gradients averaged over the group are the single-device ones. Video rows are
        # owned by one rank (mean over the group = own / P); text rows are shares (mean of shares).
        video_grad = sp_t.grad[:, : plan.local_real] / world
        ref_video = ref_t.grad[:, plan.start : plan.start + plan.local_real]
        text_grad = sp_t.grad[:, n:].clone()
        dist.all_reduce(text_grad)
        errors[f"grad_{name}_video"] = (video_grad - ref_video).abs().max().item()
        errors[f"grad_{name}_text"] = (text_grad / world - ref_t.grad[:, n_video:]).abs().max().item()
    return errors


def _worker(rank: int, world: int) -> dict[str, Any]:
    torch.manual_seed(0)
    results: dict[str, Any] = {
        "divisible": _scenario(frames=4, hw=3, text_lens=[5, 2], text_max=5, world=world, rank=rank),
        "padded": _scenario(frames=3, hw=3, text_lens=[3, 6], text_max=6, world=world, rank=rank),
        "single_sample": _scenario(frames=1, hw=5, text_lens=[4], text_max=4, world=world, rank=rank),
    }
    pairs = sequence_parallel_groups(2)  # the whole world is one sequence group
    singles = sequence_parallel_groups(1)  # two data replicas of one rank each
    results["groups"] = {
        "pairs": (pairs.sequence_size, pairs.sequence_rank, pairs.data_size, pairs.data_rank),
        "pairs_group_size": dist.get_world_size(pairs.sequence),
        "singles": (singles.sequence_size, singles.sequence_rank, singles.data_size, singles.data_rank),
        "singles_group_size": dist.get_world_size(singles.sequence),
    }
    try:
        sequence_parallel_groups(3)
        results["groups"]["error"] = ""
    except SequenceParallelError as err:
        results["groups"]["error"] = str(err)
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, WORLD, tmp_path_factory.mktemp("ulysses"), timeout_s=60)


@pytest.mark.parametrize("scenario", ["divisible", "padded", "single_sample"])
def test_outputs_equal_single_process_attention(results: list[dict[str, Any]], scenario: str) -> None:
    for per_rank in results:
        errors = per_rank[scenario]
        assert errors["forward_full"] < 1e-5
        assert errors["forward_local_video"] < 1e-5
        assert errors["padding_rows"] == 0.0


@pytest.mark.parametrize("scenario", ["divisible", "padded", "single_sample"])
def test_gradients_average_to_single_process_gradients(results: list[dict[str, Any]], scenario: str) -> None:
    for per_rank in results:
        errors = per_rank[scenario]
        for name in "qkv":
            assert errors[f"grad_{name}_video"] < 1e-5, (name, errors)
            assert errors[f"grad_{name}_text"] < 1e-5, (name, errors)


def test_sequence_groups_split_the_world_into_data_replicas(results: list[dict[str, Any]]) -> None:
    for rank, per_rank in enumerate(results):
        groups = per_rank["groups"]
        assert groups["pairs"] == (2, rank, 1, 0) and groups["pairs_group_size"] == 2
        assert groups["singles"] == (1, 0, 2, rank) and groups["singles_group_size"] == 1
        assert "world size 2 is not a multiple of the sequence-parallel size 3" in groups["error"]


def test_divisibility_rules_raise_clear_errors() -> None:
    check_heads(24, 8)
    with pytest.raises(
        SequenceParallelError, match=r"num_heads 24 is not divisible by the sequence-parallel size 5"
    ):
        check_heads(24, 5)
    with pytest.raises(SequenceParallelError, match="3 video tokens cannot be split over 4"):
        plan_video_shards((1, 1, 3), world=4, rank=0)
    with pytest.raises(
        SequenceParallelError, match="33 latent frames are not divisible by the sequence-parallel size 8"
    ):
        plan_video_shards((33, 45, 80), world=8, rank=0, whole_frames=True)


def test_shard_plan_splits_frames_or_tokens_with_little_padding() -> None:
    # 720p x 129 frames on 8 GPUs: 33 latent frames of 45 x 80 tokens; 118,800 tokens = 8 x 14,850.
    plans = [plan_video_shards((33, 45, 80), world=8, rank=r) for r in range(8)]
    assert {p.local_tokens for p in plans} == {14_850} and plans[0].padded_total == 118_800
    # Frame 0 (3,600 tokens) lies on rank 0; frames straddle ranks (14,850 is not a multiple of 3,600).
    assert [p.local_first_frame_tokens for p in plans[:2]] == [3600, 0]
    # P divides T: whole frames per rank.
    halves = [plan_video_shards((4, 3, 5), world=2, rank=r) for r in range(2)]
    assert [(p.start, p.local_real) for p in halves] == [(0, 30), (30, 30)]
    # P does not divide N: fewer than P padding tokens, all on the last rank.
    odd = [plan_video_shards((3, 1, 3), world=4, rank=r) for r in range(4)]
    assert [p.local_real for p in odd] == [3, 3, 3, 0] and odd[0].padded_total == 12
    # A first frame larger than a shard is spread over the first ranks, as a prefix of each.
    wide = [plan_video_shards((2, 2, 5), world=4, rank=r) for r in range(4)]
    assert [p.local_first_frame_tokens for p in wide] == [5, 5, 0, 0]

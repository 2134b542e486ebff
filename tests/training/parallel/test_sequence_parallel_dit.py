"""A tiny HunyuanDiT under `parallelize_dit` on 2 gloo processes equals the single-process model.

Forward (T2V with frames divisible by P, and with a token count that needs padding; I2V
token_replace, also with the first frame spread over both ranks) and backward (parameter
gradients averaged over the group, with and without activation checkpointing), fp32. One spawn runs
every scenario; each rank writes its errors and the tests assert on them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.distributed as dist

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from tests.model.builders import dit_inputs, randomize_
from tests.training.parallel.ranks import run_ranks
from training.parallel import (
    SequenceParallelError,
    is_sequence_parallel,
    parallelize_dit,
    remove_sequence_parallel,
)

WORLD = 2


def _tiny(image_condition: str | None = None) -> HunyuanDiT:
    torch.manual_seed(0)
    cfg = DiTConfig.preset("tiny", image_condition=image_condition)
    return randomize_(HunyuanDiT(cfg), seed=0, std=0.1)  # type: ignore[return-value]


def _forward_error(model: HunyuanDiT, grid: tuple[int, int, int], i2v: bool = False) -> float:
    inputs = dit_inputs(model.config, batch=2, grid=grid, text_len=6, seed=sum(grid))
    extra: dict[str, Any] = {}
    if i2v:
        extra["first_frame_clean"] = torch.randn(2, model.config.out_channels, 1, *grid[1:])
    with torch.no_grad():
        remove_sequence_parallel(model)
        reference = model(*inputs, **extra)
        parallelize_dit(model)
        parallel = model(*inputs, **extra)
    assert parallel.shape == reference.shape
    return (parallel - reference).abs().max().item() / reference.abs().max().item()


def _gradient_errors(model: HunyuanDiT, grid: tuple[int, int, int], checkpointing: bool) -> dict[str, Any]:
    inputs = dit_inputs(model.config, batch=2, grid=grid, text_len=5, seed=7)
    weight = torch.randn(2, model.config.out_channels, *grid, generator=torch.Generator().manual_seed(3))
    model.gradient_checkpointing = checkpointing

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        (model(*inputs) * weight).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    remove_sequence_parallel(model)
    reference = grads()
    parallelize_dit(model)
    parallel = grads()
    worst, worst_name = 0.0, ""
    for name, ref in reference.items():
        mean = parallel[name].clone()
        dist.all_reduce(mean)
        mean /= dist.get_world_size()
        err = ((mean - ref).norm() / ref.norm().clamp_min(1e-12)).item()
        if err > worst:
            worst, worst_name = err, name
    model.gradient_checkpointing = False
    missing = len(set(reference) - set(parallel))
    return {"worst_relative": worst, "worst_name": worst_name, "params": len(reference), "missing": missing}


def _worker(rank: int, world: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    t2v = _tiny()
    results["forward_divisible"] = _forward_error(t2v, (4, 4, 6))
    results["forward_padded"] = _forward_error(t2v, (3, 2, 6))  # 9 tokens: 5 + (4 + 1 padding)
    i2v = _tiny("token_replace")
    results["forward_i2v"] = _forward_error(i2v, (3, 2, 6), i2v=True)
    results["forward_i2v_straddle"] = _forward_error(i2v, (1, 4, 6), i2v=True)  # frame 0 on both ranks
    results["grads"] = _gradient_errors(t2v, (2, 4, 6), checkpointing=False)
    results["grads_checkpointing"] = _gradient_errors(t2v, (3, 2, 6), checkpointing=True)

    # A copy of a parallelized model (EMA export, checkpoint) stays parallel on the same group.
    results["deepcopy_parallel"] = is_sequence_parallel(copy.deepcopy(t2v))

    # Heads are checked when parallelizing, before any forward: 3 heads cannot be split over 2 ranks.
    three_heads = HunyuanDiT(DiTConfig.preset("tiny", hidden_size=48, num_heads=3, rope_dims=(4, 6, 6)))
    try:
        parallelize_dit(three_heads)
        results["heads_error"] = ""
    except SequenceParallelError as err:
        results["heads_error"] = str(err)
    results["heads_untouched"] = not is_sequence_parallel(three_heads)

    # Ranks that disagree on the input shape fail with a message instead of hanging.
    grid = (2, 4, 6) if rank == 0 else (4, 4, 6)
    try:
        with torch.no_grad():
            t2v(*dit_inputs(t2v.config, batch=1, grid=grid))
        results["mismatch_error"] = ""
    except SequenceParallelError as err:
        results["mismatch_error"] = str(err)
    # Same shapes, different noise on each rank (seeded by the global rank): refused.
    try:
        with torch.no_grad():
            t2v(*dit_inputs(t2v.config, batch=1, grid=(2, 4, 6), seed=rank))
        results["noise_error"] = ""
    except SequenceParallelError as err:
        results["noise_error"] = str(err)
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, WORLD, tmp_path_factory.mktemp("sp_dit"), timeout_s=90)


@pytest.mark.parametrize(
    "scenario", ["forward_divisible", "forward_padded", "forward_i2v", "forward_i2v_straddle"]
)
def test_forward_equals_single_process(results: list[dict[str, Any]], scenario: str) -> None:
    for per_rank in results:
        assert per_rank[scenario] < 1e-5, per_rank[scenario]


@pytest.mark.parametrize("scenario", ["grads", "grads_checkpointing"])
def test_gradients_averaged_over_the_group_equal_single_process(
    results: list[dict[str, Any]], scenario: str
) -> None:
    for per_rank in results:
        errors = per_rank[scenario]
        assert errors["missing"] == 0
        assert errors["params"] > 40  # every weight of the tiny DiT got a gradient
        assert errors["worst_relative"] < 1e-5, errors


def test_copies_stay_parallel_and_mismatched_inputs_or_noise_fail_clearly(
    results: list[dict[str, Any]],
) -> None:
    for per_rank in results:
        assert per_rank["deepcopy_parallel"] is True
        assert "ranks of one sequence-parallel group got different inputs" in per_rank["mismatch_error"]
        assert "got different latents" in per_rank["noise_error"]
        assert "num_heads 3 is not divisible by the sequence-parallel size 2" in per_rank["heads_error"]
        assert per_rank["heads_untouched"] is True


def test_parallelize_needs_an_initialised_process_group() -> None:
    model = HunyuanDiT(DiTConfig.preset("tiny"))  # 2 heads
    with pytest.raises(SequenceParallelError, match="torch.distributed initialised"):
        parallelize_dit(model)
    assert not is_sequence_parallel(model)

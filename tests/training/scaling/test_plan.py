"""The sweep planner: sizes × budgets → (N, D, steps, batch) that spend each budget."""

from __future__ import annotations

import pytest

from model.dit_config import DiTConfig
from model.flops import dit_flops, dit_param_count
from training.scaling.plan import SweepConfig, bracket_runs, plan_sweep


def test_every_run_spends_its_budget_and_d_is_the_tokens_it_buys():
    config = SweepConfig.preset("tiny")
    plan = plan_sweep("image", [3e11, 1e11], config)
    assert [r.budget for r in plan.runs] == sorted(r.budget for r in plan.runs)  # by budget
    assert {r.size for r in plan.runs} == {s.name for s in config.sizes}
    for run in plan.runs:
        assert run.params == dit_param_count(run.dit_config)
        assert run.video_tokens == 1 * 4 * 4  # (1, 8, 8) latent, patch (1, 2, 2)
        assert run.flops_per_sample == dit_flops(run.dit_config, 16, config.text_tokens).training
        assert run.batch_size == config.image_batch_size and run.steps >= config.min_steps
        # Rounding the step count costs at most half a step of the budget.
        assert abs(run.flops - run.budget) <= run.batch_size * run.flops_per_sample / 2
        assert run.tokens == run.steps * run.batch_size * 16
        assert run.tokens == pytest.approx(run.budget / run.flops_per_token, rel=0.03)
    # At one budget, a bigger model sees fewer tokens.
    at_1e11 = sorted((r for r in plan.runs if r.budget == 1e11), key=lambda r: r.params)
    assert [r.tokens for r in at_1e11] == sorted((r.tokens for r in at_1e11), reverse=True)
    assert plan.total_flops == pytest.approx(sum(r.flops for r in plan.runs))


def test_sizes_vary_depth_and_width_with_a_fixed_head_dim():
    for name, low, high in (("tiny", 0.1e6, 4.2e6), ("paper", 0.09e9, 1.05e9)):
        config = SweepConfig.preset(name)
        base = DiTConfig.preset(config.dit_preset)
        built = [spec.dit_config(base) for spec in config.sizes]
        params = [dit_param_count(c) for c in built]
        assert params == sorted(params) and low <= params[0] and params[-1] <= high, params
        assert params[-1] / params[0] > 9
        assert {c.head_dim for c in built} == {base.head_dim}
        assert len({c.hidden_size for c in built}) > 3 and len({c.depth_double for c in built}) > 1
        assert all(c.depth_single >= c.depth_double for c in built)


def test_video_runs_use_the_video_latent_and_batch():
    config = SweepConfig.preset("paper")
    plan = plan_sweep("video", [1e20], config, sizes=["w768-2x3", "w1536-6x12"])
    assert [r.size for r in plan.runs] == ["w768-2x3", "w1536-6x12"]
    for run in plan.runs:
        assert run.video_tokens == 9 * 16 * 16 and run.text_tokens == 256
        assert run.batch_size == config.video_batch_size and run.family == "video"


def test_budgets_too_small_for_a_size_are_skipped_with_a_reason():
    config = SweepConfig.preset("tiny")
    plan = plan_sweep("image", [3e10], config)
    assert [s.split(" at ")[0] for s in plan.skipped] == ["w160-2x4"]
    assert "fewer than 20" in plan.skipped[0]
    assert "w160-2x4" not in {r.size for r in plan.runs}


def test_bad_requests_are_rejected():
    config = SweepConfig.preset("tiny")
    with pytest.raises(ValueError, match="unknown sweep family 'audio'"):
        plan_sweep("audio", [1e11], config)
    with pytest.raises(ValueError, match="positive FLOP counts"):
        plan_sweep("image", [0.0], config)
    with pytest.raises(ValueError, match="unknown sweep size 'huge'"):
        plan_sweep("image", [1e11], config, sizes=["huge"])
    with pytest.raises(
        ValueError, match="unknown SweepConfig preset .medium.; choose one of tiny, gpu, paper"
    ):
        SweepConfig.preset("medium")


def test_bracketing_adds_the_neighbouring_size_where_a_budget_minimum_is_at_an_end():
    config = SweepConfig.preset("tiny")  # ladder w32-1x1, w64-1x1, w64-1x2, w96-1x2, w128-2x4, w160-2x4
    losses = {
        (1e10, "w64-1x1"): 1.0, (1e10, "w64-1x2"): 1.2, (1e10, "w96-1x2"): 1.4,  # best smallest → w32-1x1
        (3e10, "w64-1x1"): 1.3, (3e10, "w64-1x2"): 1.1, (3e10, "w96-1x2"): 1.2,  # bracketed already
        (1e11, "w64-1x2"): 1.5, (1e11, "w96-1x2"): 1.2,  # best largest → w128-2x4
        (3e11, "w160-2x4"): 0.9,  # one size: both sides, the ladder ends above it
    }  # fmt: skip
    extra = bracket_runs("image", losses, config)
    assert [(r.budget, r.size) for r in extra.runs] == [
        (1e10, "w32-1x1"),
        (1e11, "w128-2x4"),
        (3e11, "w128-2x4"),
    ]
    assert extra.skipped == ["C = 3e+11: best at w160-2x4, the ladder's largest size"]
    assert all(r.steps == plan_sweep("image", [r.budget], config, [r.size]).runs[0].steps for r in extra.runs)

    # A video sweep may only add sizes it has image checkpoints for; too few steps is a plan skip.
    limited = bracket_runs("image", losses, config, allowed=["w32-1x1"])
    assert [(r.budget, r.size) for r in limited.runs] == [(1e10, "w32-1x1")]
    assert "w128-2x4 would bracket the minimum but is not allowed" in limited.skipped[0]
    tight = bracket_runs("image", {(1e8, "w32-1x1"): 2.0, (1e8, "w64-1x1"): 1.0}, config)
    assert tight.runs == [] and "w64-1x2 at C = 1e+08" in tight.skipped[0]
    assert bracket_runs("image", {(1e10, "w64-1x1"): float("nan")}, config).runs == []

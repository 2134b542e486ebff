"""IsoFLOP minima and the power laws through them (Chinchilla's approach 2, the report's §4.4).

For each compute budget C the runs trade parameters against tokens at (nearly) equal FLOPs. The
loss is fitted by a parabola in log N, L ≈ a·(log N)² + b·(log N) + c, whose vertex is N_opt(C);
a second parabola in log D gives D_opt(C) directly, so no FLOPs-per-token rule (6·N) is assumed.
Across budgets, log N_opt = log a1 + b1·log C and log D_opt = log a2 + b2·log C are straight lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PowerLaw:
    """value = coefficient · C^exponent."""

    coefficient: float
    exponent: float

    def __call__(self, compute: Any) -> Any:
        """At a budget (float) or an array of budgets (same shape back)."""
        return self.coefficient * np.power(compute, self.exponent)


@dataclass(frozen=True)
class BudgetMinimum:
    """The vertex of one budget's IsoFLOP parabolas.

    `loss_at_opt` is the parabola's value at N_opt; `best_loss` the lowest loss any run reached;
    `inside_range` is False when a vertex lies outside the sizes (or token counts) that were run,
    i.e. the minimum is extrapolated and the budget needs sizes on the far side.
    """

    budget: float
    runs: int
    n_opt: float
    d_opt: float
    loss_at_opt: float
    best_loss: float
    inside_range: bool


def parabola_vertex(x: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    """(x, y) of the least-squares parabola's minimum; None if it does not curve up or x has < 3 values."""
    if len(np.unique(x)) < 3:
        return None
    a, b, c = np.polyfit(x, y, 2)
    if a <= 0:
        return None
    x_min = -b / (2 * a)
    return float(x_min), float(c - b * b / (4 * a))


def budget_minima(
    params: np.ndarray, tokens: np.ndarray, loss: np.ndarray, budgets: np.ndarray
) -> tuple[list[BudgetMinimum], list[str]]:
    """Per-budget vertices (sorted by budget) and a note for each budget that has none.

    Args:
        params, tokens, loss, budgets: one entry per run; runs of one budget share its value.
    """
    minima, notes = [], []
    for budget in np.unique(budgets):
        member = budgets == budget
        log_n, log_d, curve = np.log(params[member]), np.log(tokens[member]), loss[member]
        by_size, by_tokens = parabola_vertex(log_n, curve), parabola_vertex(log_d, curve)
        if by_size is None or by_tokens is None:
            notes.append(
                f"budget {budget:.3g}: {int(member.sum())} run(s) whose loss does not curve up in log N "
                "(needs >= 3 sizes with the best one in the middle); left out"
            )
            continue
        inside = bool(log_n.min() <= by_size[0] <= log_n.max() and log_d.min() <= by_tokens[0] <= log_d.max())
        if not inside:
            notes.append(f"budget {budget:.3g}: {_outside(by_size[0], log_n, by_tokens[0], log_d)}")
        minima.append(
            BudgetMinimum(
                budget=float(budget),
                runs=int(member.sum()),
                n_opt=math.exp(by_size[0]),
                d_opt=math.exp(by_tokens[0]),
                loss_at_opt=by_size[1],
                best_loss=float(curve.min()),
                inside_range=inside,
            )
        )
    return minima, notes


def _outside(log_n_opt: float, log_n: np.ndarray, log_d_opt: float, log_d: np.ndarray) -> str:
    """Which side of the runs a budget's extrapolated minimum lies on, and what would bracket it."""
    if log_n_opt < log_n.min():
        side = f"below the smallest size run ({math.exp(log_n.min()):.3g} params): add smaller sizes"
    elif log_n_opt > log_n.max():
        side = f"above the largest size run ({math.exp(log_n.max()):.3g} params): add larger sizes"
    else:
        side = "outside the token counts run: add sizes on both sides"
    return f"the minimum lies {side} (extrapolated, N_opt ≈ {math.exp(log_n_opt):.3g})"


def fit_power_law(compute: np.ndarray, values: np.ndarray) -> PowerLaw:
    """Least-squares line through (log C, log value): needs >= 2 distinct budgets."""
    if len(np.unique(compute)) < 2:
        raise ValueError("a power law needs minima at >= 2 distinct budgets")
    exponent, log_coefficient = np.polyfit(np.log(compute), np.log(values), 1)
    return PowerLaw(coefficient=math.exp(log_coefficient), exponent=float(exponent))

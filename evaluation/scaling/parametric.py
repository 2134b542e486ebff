"""The parametric loss L(N, D) = E + A/N^α + B/D^β, fitted as Chinchilla's approach 3.

The fit minimises Σ Huber_δ(LSE(a − α·log N, b − β·log D, e) − log L) over (a, b, e, α, β) with
A = eᵃ, B = eᵇ, E = eᵉ: the log-sum-exp form is log L(N, D) evaluated without overflow, and the
Huber loss (δ = 1e-3) keeps a few bad runs from pulling the fit. The objective has many local
minima, so it is evaluated on Chinchilla's grid of initialisations and L-BFGS starts from the best
few grid points (and from any caller-given starts).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

HUBER_DELTA = 1e-3
# Chinchilla's initialisation grid: α, β ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}.
_GRID = np.array(
    [
        (a, b, e, alpha, beta)
        for a, b, e, alpha, beta in itertools.product(
            np.arange(0, 26, 5.0),
            np.arange(0, 26, 5.0),
            np.arange(-1, 1.01, 0.5),
            np.arange(0, 2.01, 0.5),
            np.arange(0, 2.01, 0.5),
        )
    ]
)  # (G, 5) rows of (a, b, e, alpha, beta)
MIN_RUNS = 5  # five free parameters


@dataclass(frozen=True)
class ParametricLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, params: float | np.ndarray, tokens: float | np.ndarray) -> float | np.ndarray:
        return self.E + self.A / np.power(params, self.alpha) + self.B / np.power(tokens, self.beta)

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> ParametricLaw:
        a, b, e, alpha, beta = (float(v) for v in theta)
        return cls(E=math.exp(e), A=math.exp(a), B=math.exp(b), alpha=alpha, beta=beta)

    def theta(self) -> np.ndarray:
        return np.array([math.log(self.A), math.log(self.B), math.log(self.E), self.alpha, self.beta])


def _terms(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """(runs, 3) log-terms of the LSE for one theta (a, b, e, alpha, beta)."""
    a, b, e, alpha, beta = theta
    return np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], axis=1)


def _huber(residual: np.ndarray) -> np.ndarray:
    small = np.abs(residual) <= HUBER_DELTA
    return np.where(small, 0.5 * residual**2, HUBER_DELTA * (np.abs(residual) - 0.5 * HUBER_DELTA))


def _objective(
    theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray
) -> tuple[float, np.ndarray]:
    """Σ Huber(LSE − log L) and its gradient in (a, b, e, alpha, beta)."""
    terms = _terms(theta, log_n, log_d)
    residual = logsumexp(terms, axis=1) - log_l
    weights = softmax(terms, axis=1)  # ∂LSE/∂term
    slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)  # Huber′
    grad = np.array(
        [
            np.sum(slope * weights[:, 0]),
            np.sum(slope * weights[:, 1]),
            np.sum(slope * weights[:, 2]),
            np.sum(slope * weights[:, 0] * -log_n),
            np.sum(slope * weights[:, 1] * -log_d),
        ]
    )
    return float(np.sum(_huber(residual))), grad


def _grid_objective(log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray) -> np.ndarray:
    """The objective at every grid point at once: (G,)."""
    a, b, e, alpha, beta = (_GRID[:, i : i + 1] for i in range(5))  # each (G, 1)
    terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, (len(_GRID), len(log_n)))])
    return _huber(logsumexp(terms, axis=0) - log_l).sum(axis=1)


def fit_parametric(
    params: np.ndarray,
    tokens: np.ndarray,
    loss: np.ndarray,
    starts: Sequence[np.ndarray] = (),
    grid_starts: int = 8,
) -> ParametricLaw:
    """The (a, b, e, α, β) with the lowest Huber objective over L-BFGS runs from the best
    `grid_starts` grid points and from `starts` (e.g. a previous fit, to speed up a bootstrap).

    Args:
        params, tokens, loss: one entry per run (>= `MIN_RUNS` runs), all > 0.
    """
    if not starts and grid_starts < 1:
        raise ValueError("fit_parametric needs at least one start: give starts or grid_starts >= 1")
    if len(loss) < MIN_RUNS:
        raise ValueError(f"the parametric law has 5 parameters: it needs >= {MIN_RUNS} runs, got {len(loss)}")
    log_n, log_d, log_l = np.log(params), np.log(tokens), np.log(loss)
    ranked = np.argsort(_grid_objective(log_n, log_d, log_l)) if grid_starts else np.array([], dtype=int)
    best: tuple[float, np.ndarray] | None = None
    for start in [*starts, *_GRID[ranked[:grid_starts]]]:
        result = minimize(
            _objective,
            np.asarray(start, dtype=float),
            args=(log_n, log_d, log_l),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": 1000},
        )
        if best is None or result.fun < best[0]:
            best = (float(result.fun), result.x)
    assert best is not None
    return ParametricLaw.from_theta(best[1])

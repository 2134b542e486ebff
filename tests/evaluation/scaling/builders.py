"""Synthetic IsoFLOP sweeps drawn from a known L(N, D), for the scaling-law tests."""

from __future__ import annotations

import numpy as np

from evaluation.scaling import ParametricLaw, ScalingRun

# Chinchilla's fitted law (Hoffmann et al. 2022): N_opt ∝ C^0.4516.
CHINCHILLA = ParametricLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
# A law with the report's image-family exponent b1 = β/(α+β) = 0.5634 (SPEC.md §4).
PAPER_IMAGE_LIKE = ParametricLaw(E=1.2, A=300.0, B=900.0, alpha=0.30, beta=0.3872)
BUDGETS = (1e18, 1e19, 1e20, 1e21, 1e22)


def optimal_exponents(law: ParametricLaw) -> tuple[float, float]:
    """(b1, b2) of N_opt ∝ C^b1, D_opt ∝ C^b2 when C = 6·N·D: b1 = β/(α+β), b2 = α/(α+β)."""
    total = law.alpha + law.beta
    return law.beta / total, law.alpha / total


def isoflop_runs(
    law: ParametricLaw,
    budgets: tuple[float, ...] = BUDGETS,
    sizes: int = 9,
    noise: float = 0.01,
    seed: int = 0,
    with_flops: bool = True,
) -> list[ScalingRun]:
    """`sizes` runs per budget, log-spaced over 1/10 … 10 × the true N_opt (±12% jitter), C = 6·N·D,
    loss = law · (1 + noise · standard normal)."""
    rng = np.random.default_rng(seed)
    b1, _ = optimal_exponents(law)
    scale = (law.alpha * law.A / (law.beta * law.B)) ** (1 / (law.alpha + law.beta))
    runs = []
    for budget in budgets:
        n_opt = scale * (budget / 6) ** b1
        for index, offset in enumerate(np.linspace(-1, 1, sizes)):
            params = n_opt * 10 ** (offset + rng.uniform(-0.05, 0.05))
            tokens = budget / (6 * params)
            loss = float(law.loss(params, tokens)) * (1 + noise * rng.standard_normal())
            runs.append(
                ScalingRun(
                    params=params,
                    tokens=tokens,
                    flops=budget if with_flops else 6 * params * tokens,
                    loss=loss,
                    name=f"C{budget:.0e}-s{index}",
                )
            )
    return runs

"""The two scaling-law figures (PNG, written atomically).

- `plot_loss_envelope`: left, the IsoFLOP curves (loss against N per budget, their parabolas and
  vertices); right, loss against compute (every run, the per-budget envelope, and the parametric
  law along the fitted N_opt(C), D_opt(C) up to the recommended budget).
- `plot_optimal_allocation`: N_opt and D_opt against C, the per-budget vertices, the power laws and
  their bootstrap bands.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.scaling.fit import ScalingFit
from evaluation.scaling.runs import ScalingRun, assign_budgets


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png", dir=path.parent)
    os.close(handle)
    figure.savefig(tmp, dpi=110)
    _pyplot().close(figure)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _compute_axis(fit: ScalingFit, budget: float | None) -> np.ndarray:
    smallest = min(m.budget for m in fit.minima)
    target = fit.recommend(budget).budget
    return np.geomspace(min(smallest, target) / 2, max(fit.largest_budget, target) * 2, 100)


def plot_loss_envelope(
    runs: Sequence[ScalingRun], fit: ScalingFit, path: Path, budget: float | None = None
) -> Path:
    """IsoFLOP curves and the loss-vs-compute envelope with the fits; returns `path`."""
    plt = _pyplot()
    budgets = np.array(assign_budgets(runs))
    params = np.array([r.params for r in runs])
    loss = np.array([r.loss for r in runs])
    flops = np.array([r.flops for r in runs])
    figure, (curves, envelope) = plt.subplots(1, 2, figsize=(12, 4.6))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(np.unique(budgets))))
    fitted = {m.budget: m for m in fit.minima}
    for colour, value in zip(colours, np.unique(budgets), strict=True):
        member = budgets == value
        curves.scatter(params[member], loss[member], color=colour, s=16, label=f"C = {value:.2g}")
        if value in fitted:
            log_n = np.log(params[member])
            coefficients = np.polyfit(log_n, loss[member], 2)
            grid = np.linspace(log_n.min(), log_n.max(), 60)
            curves.plot(np.exp(grid), np.polyval(coefficients, grid), color=colour, lw=1)
            curves.scatter([fitted[value].n_opt], [fitted[value].loss_at_opt], color=colour, marker="*", s=90)
    curves.set_xscale("log")
    curves.set_xlabel("parameters N")
    curves.set_ylabel("final training loss")
    curves.set_title("IsoFLOP curves (★ parabola minimum)")
    curves.legend(fontsize=7)

    scatter = envelope.scatter(flops, loss, c=np.log10(params), cmap="viridis", s=14)
    figure.colorbar(scatter, ax=envelope, label="log10 N")
    order = np.argsort([m.budget for m in fit.minima])
    envelope.plot(
        [fit.minima[i].budget for i in order],
        [fit.minima[i].best_loss for i in order],
        "k.-",
        label="envelope (best run per budget)",
    )
    axis = _compute_axis(fit, budget)
    predicted = fit.parametric.loss(fit.n_opt(axis), fit.d_opt(axis))
    law = fit.parametric
    envelope.plot(
        axis,
        predicted,
        "r--",
        label=f"L = {law.E:.3g} + {law.A:.3g}/N^{law.alpha:.3f} + {law.B:.3g}/D^{law.beta:.3f} at N_opt, D_opt",
    )
    target = fit.recommend(budget)
    envelope.errorbar(
        [target.budget],
        [target.predicted_loss],
        yerr=[
            [target.predicted_loss - target.predicted_loss_ci[0]],
            [target.predicted_loss_ci[1] - target.predicted_loss],
        ],
        fmt="r*",
        markersize=11,
        label=f"prediction at C = {target.budget:.2g}",
    )
    envelope.set_xscale("log")
    envelope.set_xlabel("training compute C (FLOPs)")
    envelope.set_ylabel("final training loss")
    envelope.set_title("Loss against compute")
    envelope.legend(fontsize=7)
    figure.tight_layout()
    return _save(figure, path)


def plot_optimal_allocation(fit: ScalingFit, path: Path, budget: float | None = None) -> Path:
    """N_opt(C) and D_opt(C): per-budget minima, power laws, bootstrap bands; returns `path`."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 4.6))
    compute = _compute_axis(fit, budget)
    log_c = np.log(compute)
    tail = 100 * (1 - fit.confidence) / 2
    for law, draws, values, colour, label in (
        (fit.n_opt, fit.n_opt_draws, [m.n_opt for m in fit.minima], "tab:blue", "N_opt (parameters)"),
        (fit.d_opt, fit.d_opt_draws, [m.d_opt for m in fit.minima], "tab:orange", "D_opt (tokens)"),
    ):
        axis.scatter([m.budget for m in fit.minima], values, color=colour, zorder=3)
        axis.plot(
            compute,
            law(compute),
            color=colour,
            label=f"{label} = {law.coefficient:.3g}·C^{law.exponent:.4f}",
        )
        if len(draws):
            band = np.exp(draws[:, :1] + draws[:, 1:] * log_c[None, :])  # (draws, points)
            low, high = np.percentile(band, [tail, 100 - tail], axis=0)
            axis.fill_between(compute, low, high, color=colour, alpha=0.2)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("training compute C (FLOPs)")
    axis.set_ylabel("compute-optimal N or D")
    axis.set_title(f"Compute-optimal allocation ({100 * fit.confidence:.0f}% bootstrap bands)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, path)

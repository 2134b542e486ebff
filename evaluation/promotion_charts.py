"""The promotion report's pictures (matplotlib, Agg; PNGs for Dagster metadata and MLflow artifacts).

- `metrics_chart`: each automatic metric of the candidate beside the champion's (when there is one),
  one small panel per metric because their units differ, the gate threshold as a dashed line.
- `gsb_chart`: the candidate's GSB score against the baseline per dimension, with its CI.
- `bradley_terry_chart`: the Bradley–Terry log-strength of each model per dimension, with its CI.
- `campaign_charts`: both of the latter for one campaign (the `human_eval` asset, the promotion).
Every function writes `out` atomically and returns it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.figures import pyplot, save_figure
from evaluation.human_eval.config import DIMENSION_LABELS, DIMENSIONS
from evaluation.human_eval.results import CampaignResults
from evaluation.promotion import PromotionOutcome, candidate_gsb_frame


def metrics_chart(
    candidate: Mapping[str, float | None],
    champion: Mapping[str, float | None] | None,
    thresholds: Mapping[str, float],
    out: Path,
    labels: tuple[str, str] = ("candidate", "champion"),
) -> Path:
    """Bars of `candidate` (and `champion`, when given) per metric; dashed line at `thresholds`.

    Metrics without a candidate value are left out; a missing champion value leaves its bar out.
    `champion` None: there is no champion; {}: there is one, evaluated before metrics were recorded.
    """
    keys = [k for k, v in candidate.items() if v is not None and math.isfinite(v)]
    if not keys:
        raise ValueError("metrics_chart: the candidate has no measured metric")
    plt = pyplot()
    columns = min(3, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        names, values, colours = [labels[0]], [candidate[key]], ["#4c72b0"]
        theirs = None if champion is None else champion.get(key)
        if theirs is not None:
            names.append(labels[1])
            values.append(theirs)
            colours.append("#999999")
        ax.bar(names, values, color=colours)
        if key in thresholds:
            ax.axhline(thresholds[key], color="#c44e52", linestyle="--", linewidth=2.0, label="gate")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(key, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if champion:
        title = f"{labels[0]} vs {labels[1]}"
    else:
        title = (
            f"{labels[0]} (no champion yet)"
            if champion is None
            else f"{labels[0]} ({labels[1]}: no recorded metrics)"
        )
    fig.suptitle(f"Automatic metrics: {title}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def gsb_chart(gsb: pd.DataFrame, out: Path, title: str = "candidate vs baseline") -> Path:
    """Horizontal bars of GSB score per dimension with CI whiskers.

    `gsb` has columns dimension, gsb, ci_low, ci_high (the candidate's side, as
    `evaluation.promotion.candidate_gsb` orients it)."""
    if gsb.empty:
        raise ValueError("gsb_chart: no GSB rows")
    plt = pyplot()
    order = [d for d in DIMENSIONS if d in set(gsb["dimension"])]
    frame = gsb.set_index("dimension").loc[order]
    fig, ax = plt.subplots(figsize=(6, 0.5 * len(order) + 1.2))
    y = range(len(order))
    low = (frame["gsb"] - frame["ci_low"]).clip(lower=0)
    high = (frame["ci_high"] - frame["gsb"]).clip(lower=0)
    colours = ["#55a868" if v > 0 else "#c44e52" for v in frame["gsb"]]
    ax.barh(list(y), frame["gsb"], xerr=[low, high], color=colours, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(list(y), [DIMENSION_LABELS[d] for d in order], fontsize=8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel("GSB = (G − B) / (G + S + B)", fontsize=8)
    ax.set_title(f"GSB, {title} (whiskers: CI)", fontsize=10)
    return save_figure(fig, out)


def bradley_terry_chart(scores: Mapping[str, pd.DataFrame], out: Path) -> Path:
    """Bradley–Terry log-strength per model, one panel per dimension, with CI whiskers.

    `scores` maps dimension → frame with columns model, score, ci_low, ci_high
    (`evaluation.human_eval.aggregate.bradley_terry`)."""
    order = [d for d in DIMENSIONS if d in scores and not scores[d].empty]
    if not order:
        raise ValueError("bradley_terry_chart: no Bradley–Terry scores")
    plt = pyplot()
    fig, axes = plt.subplots(1, len(order), figsize=(2.6 * len(order), 2.8), squeeze=False, sharey=True)
    for ax, dim in zip(axes.flat, order, strict=True):
        frame = scores[dim].sort_values("model")
        x = list(range(len(frame)))
        low = (frame["score"] - frame["ci_low"]).clip(lower=0).fillna(0)
        high = (frame["ci_high"] - frame["score"]).clip(lower=0).fillna(0)
        ax.errorbar(x, frame["score"], yerr=[low, high], fmt="o", capsize=4, color="#4c72b0")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(x, list(frame["model"]), fontsize=7, rotation=20)
        ax.set_title(DIMENSION_LABELS[dim], fontsize=8)
    axes.flat[0].set_ylabel("log-strength (mean 0)", fontsize=8)
    fig.suptitle("Bradley–Terry scores (whiskers: CI)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def promotion_charts(
    outcome: PromotionOutcome,
    video_report: Mapping[str, Any],
    champion_metrics: Mapping[str, float] | None,
    out_dir: Path,
) -> dict[str, Path]:
    """The report pictures of one promotion decision, written to `out_dir`:
    "metrics_vs_champion" always (`champion_metrics` None: no champion); "gsb" and "bradley_terry"
    when the campaign has judgments."""
    candidate = {key: summary["mean"] for key, summary in video_report["metrics"].items()}
    thresholds = {verdict["metric"]: verdict["threshold"] for verdict in video_report["gates"]}
    charts = {
        "metrics_vs_champion": metrics_chart(
            candidate, champion_metrics, thresholds, out_dir / "promotion_metrics.png"
        )
    }
    results = outcome.human.results
    if results is not None:
        charts |= campaign_charts(results, out_dir, prefix="promotion")
    return charts


def campaign_charts(results: CampaignResults, out_dir: Path, prefix: str = "campaign") -> dict[str, Path]:
    """ "gsb" and "bradley_terry" charts of a campaign (`<prefix>_gsb.png`, `<prefix>_bt.png` in
    `out_dir`); none before it has judgments."""
    if results.gsb.empty:
        return {}
    return {
        "gsb": gsb_chart(candidate_gsb_frame(results), out_dir / f"{prefix}_gsb.png"),
        "bradley_terry": bradley_terry_chart(results.bradley_terry, out_dir / f"{prefix}_bt.png"),
    }

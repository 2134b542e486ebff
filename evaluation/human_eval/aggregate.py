"""Aggregating ratings: GSB per dimension, the report's Table 3, Bradley–Terry, agreement, rater quality.

Inputs are *judgments*: one row per rated assignment (its latest rating), answers canonicalised to
the item's generation A vs B ('a' = A better, 'same', 'b' = B better). The functions below are pure
over that DataFrame so they can be checked by hand; `load_judgments` reads it from the store.

GSB formulas we report (the paper does not print its formula, so we state ours):
  * pairwise, model X vs Y on one dimension:  G, S, B = counts of "X better", "same", "Y better";
    GSB score = (G − B) / (G + S + B), in [−1, 1]; we also give G%, S%, B% and (G + S) / (B + S).
  * Table 3, per model and dimension: preference rate = (wins + ½·ties) / comparisons, over every
    comparison the model took part in (pooling its opponents); Ranking orders models by Overall.
Only regular items, first showings (not duplicates) count; gold items and duplicates feed rater
quality only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from evaluation.human_eval.agreement import krippendorff_alpha
from evaluation.human_eval.config import DIMENSION_LABELS, DIMENSIONS
from evaluation.human_eval.schema import Assignment, Generation, Item, ModelVersion, Rater, Rating
from evaluation.human_eval.store import DbLike, open_store

#: Ordinal codes for agreement: B better < same < A better.
ORDINAL_CODE: dict[str, int] = {"b": 0, "same": 1, "a": 2}
_FLIP = {"a": "b", "b": "a", "same": "same"}


def canonical_answer(displayed: str, left_is_a: bool) -> str:
    """'left'|'same'|'right' as displayed → 'a'|'same'|'b' relative to the item's generation A."""
    if displayed == "same":
        return "same"
    left_wins = displayed == "left"
    return "a" if left_wins == left_is_a else "b"


def load_judgments(db: DbLike, campaign_id: int) -> pd.DataFrame:
    """One row per rated assignment of the campaign (its latest rating), answers canonicalised.

    Columns: assignment_id, item_id, kind, rater_id, rater, prompt_id, model_a, model_b,
    is_duplicate, gold_expected (dict | None), elapsed_ms, and one column per dimension.
    """
    gen_a, gen_b = Generation.__table__.alias("gen_a"), Generation.__table__.alias("gen_b")
    model_a, model_b = ModelVersion.__table__.alias("model_a"), ModelVersion.__table__.alias("model_b")
    query = (
        select(
            Rating.id.label("rating_id"),
            Assignment.id.label("assignment_id"),
            Item.id.label("item_id"),
            Item.kind,
            Item.prompt_id,
            Item.gold_expected,
            Assignment.rater_id,
            Rater.name.label("rater"),
            Assignment.is_duplicate,
            Assignment.left_is_a,
            model_a.c.name.label("model_a"),
            model_b.c.name.label("model_b"),
            Rating.elapsed_ms,
            *[getattr(Rating, dim) for dim in DIMENSIONS],
        )
        .join(Assignment, Assignment.id == Rating.assignment_id)
        .join(Item, Item.id == Assignment.item_id)
        .join(Rater, Rater.id == Assignment.rater_id)
        .join(gen_a, gen_a.c.id == Item.generation_a_id)
        .join(gen_b, gen_b.c.id == Item.generation_b_id)
        .join(model_a, model_a.c.id == gen_a.c.model_version_id)
        .join(model_b, model_b.c.id == gen_b.c.model_version_id)
        .where(Assignment.campaign_id == campaign_id)
        .order_by(Rating.id)
    )
    with open_store(db).session() as session:
        frame = pd.DataFrame(session.execute(query).mappings().all())
    columns = [
        "assignment_id", "item_id", "kind", "rater_id", "rater", "prompt_id", "model_a", "model_b",
        "is_duplicate", "gold_expected", "elapsed_ms", *DIMENSIONS,
    ]  # fmt: skip
    if frame.empty:
        return pd.DataFrame(columns=columns)
    # Append-only store: the latest rating of an assignment is the rater's answer.
    frame = frame.drop_duplicates("assignment_id", keep="last")
    for dim in DIMENSIONS:
        frame[dim] = [
            canonical_answer(v, bool(s)) for v, s in zip(frame[dim], frame["left_is_a"], strict=True)
        ]
    return frame[columns].reset_index(drop=True)


def _primary(judgments: pd.DataFrame) -> pd.DataFrame:
    return judgments[(judgments["kind"] == "regular") & ~judgments["is_duplicate"].astype(bool)]


def gsb_interval(
    item_ids: np.ndarray,
    scores: np.ndarray,
    bootstrap_samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of a GSB score from per-judgment scores (+1 G, 0 S, −1 B).

    Items, not judgments, are resampled (as in `bradley_terry`) so the k ratings of one pair stay
    together. `bootstrap_samples=0` gives (NaN, NaN).
    """
    if bootstrap_samples == 0 or len(scores) == 0:
        return float("nan"), float("nan")
    codes, index = np.unique(item_ids, return_inverse=True)
    item_sum = np.bincount(index, weights=scores, minlength=len(codes))  # (I,)
    item_count = np.bincount(index, minlength=len(codes)).astype(np.float64)  # (I,)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(codes), np.full(len(codes), 1.0 / len(codes)), size=bootstrap_samples)
    samples = (weights @ item_sum) / (weights @ item_count)  # (S,)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def gsb_table(
    judgments: pd.DataFrame, bootstrap_samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Per (model_x, model_y, dimension): G, S, B, n, G%, S%, B%, gsb = (G−B)/n, its bootstrap CI
    (gsb_ci_low, gsb_ci_high; see `gsb_interval`), gs_over_bs = (G+S)/(B+S).

    Pairs are oriented with model_x < model_y alphabetically; G counts "model_x better".
    """
    primary = _primary(judgments)
    swapped = (primary["model_a"] > primary["model_b"]).to_numpy()
    x = np.where(swapped, primary["model_b"], primary["model_a"])
    y = np.where(swapped, primary["model_a"], primary["model_b"])
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "item_id": primary["item_id"].to_numpy(),
                    "model_x": x,
                    "model_y": y,
                    "dimension": dim,
                    # Re-orient answers so that "a" always means model_x better.
                    "answer": np.where(swapped, primary[dim].map(_FLIP), primary[dim]),
                }
            )
            for dim in DIMENSIONS
        ],
        ignore_index=True,
    )
    out = []
    for (x, y, dim), group in frame.groupby(["model_x", "model_y", "dimension"], sort=False):
        good, same, bad = (int((group["answer"] == a).sum()) for a in ("a", "same", "b"))
        n = good + same + bad
        scores = group["answer"].map({"a": 1.0, "same": 0.0, "b": -1.0}).to_numpy(dtype=np.float64)
        low, high = gsb_interval(group["item_id"].to_numpy(), scores, bootstrap_samples, confidence, seed)
        out.append(
            {
                "model_x": x,
                "model_y": y,
                "dimension": dim,
                "G": good,
                "S": same,
                "B": bad,
                "n": n,
                "G%": 100.0 * good / n,
                "S%": 100.0 * same / n,
                "B%": 100.0 * bad / n,
                "gsb": (good - bad) / n,
                "gsb_ci_low": low,
                "gsb_ci_high": high,
                "gs_over_bs": (good + same) / (bad + same) if bad + same else float("inf"),
            }
        )
    table = pd.DataFrame(out)
    if table.empty:
        return table
    order = table["dimension"].map(DIMENSIONS.index)
    return (
        table.assign(_order=order)
        .sort_values(["model_x", "model_y", "_order"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _outcomes(judgments: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Per judgment of regular items: winner/loser credit from each model's side (1, ½, 0)."""
    primary = _primary(judgments)
    score_a = primary[dimension].map({"a": 1.0, "same": 0.5, "b": 0.0})
    return pd.DataFrame(
        {
            "item_id": primary["item_id"].to_numpy(),
            "model_a": primary["model_a"].to_numpy(),
            "model_b": primary["model_b"].to_numpy(),
            "score_a": score_a.to_numpy(),
        }
    )


def table3(judgments: pd.DataFrame, durations: dict[str, str | None] | None = None) -> pd.DataFrame:
    """The report's Table 3 layout: Model, Duration, one preference rate (%) per dimension, Ranking.

    Rate = 100 · (wins + ½·ties) / comparisons of that model; Ranking 1 = best Overall.
    """
    primary = _primary(judgments)
    models = sorted(set(primary["model_a"]) | set(primary["model_b"]))
    table = pd.DataFrame({"Model": models})
    table["Duration"] = [(durations or {}).get(m) for m in models]
    for dim in DIMENSIONS:
        outcomes = _outcomes(judgments, dim)
        credit = pd.concat(
            [
                pd.DataFrame({"model": outcomes["model_a"], "score": outcomes["score_a"]}),
                pd.DataFrame({"model": outcomes["model_b"], "score": 1.0 - outcomes["score_a"]}),
            ]
        )
        rate = credit.groupby("model")["score"].mean() * 100.0
        table[DIMENSION_LABELS[dim]] = [float(rate.get(m, np.nan)) for m in models]
    overall = DIMENSION_LABELS["overall"]
    table = table.sort_values([overall, "Model"], ascending=[False, True]).reset_index(drop=True)
    table["Ranking"] = np.arange(1, len(table) + 1)
    return table


def bradley_terry_scores(
    wins: np.ndarray, prior: float = 0.5, max_iter: int = 10_000, tol: float = 1e-10
) -> np.ndarray:
    """Bradley–Terry log-strengths (M,), mean zero, from a wins matrix (M, M) (ties as ½ each way).

    P(i beats j) = exp(s_i) / (exp(s_i) + exp(s_j)). Fitted by Hunter's (2004) MM iteration.
    `prior` adds that many virtual ties to every pair so a model without wins stays finite; with
    `prior=0` a model without any win has no finite maximum-likelihood score (ValueError).
    """
    wins = np.asarray(wins, dtype=np.float64) + prior / 2.0 * (1.0 - np.eye(len(wins)))
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    if np.any(total_wins <= 0):
        raise ValueError("Bradley–Terry: a model has no wins or ties; use prior > 0 for a finite score")
    strength = np.ones(len(wins))
    for _ in range(max_iter):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = total_wins / denominator
        updated /= np.exp(np.log(updated).mean())
        if np.max(np.abs(updated - strength)) < tol:
            strength = updated
            break
        strength = updated
    log_strength = np.log(strength)
    return log_strength - log_strength.mean()


def _wins_matrix(outcomes: pd.DataFrame, models: list[str]) -> np.ndarray:
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    a = outcomes["model_a"].map(index).to_numpy()
    b = outcomes["model_b"].map(index).to_numpy()
    score = outcomes["score_a"].to_numpy()
    np.add.at(wins, (a, b), score)
    np.add.at(wins, (b, a), 1.0 - score)
    return wins


def bradley_terry(
    judgments: pd.DataFrame,
    dimension: str = "overall",
    bootstrap_samples: int = 200,
    confidence: float = 0.95,
    prior: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Bradley–Terry log-strength per model with a percentile bootstrap CI (resampling items).

    Items, not single judgments, are resampled so the k ratings of a pair stay together.
    `bootstrap_samples=0` skips the CI (NaN). Returns columns model, score, ci_low, ci_high,
    sorted by score (best first).
    """
    outcomes = _outcomes(judgments, dimension)
    models = sorted(set(outcomes["model_a"]) | set(outcomes["model_b"]))
    if not models:
        return pd.DataFrame(columns=["model", "score", "ci_low", "ci_high"])
    scores = bradley_terry_scores(_wins_matrix(outcomes, models), prior=prior)
    # Per-item wins matrices (I, M, M): a bootstrap sample is a weighted sum of them.
    item_codes, item_index = np.unique(outcomes["item_id"].to_numpy(), return_inverse=True)
    index = {m: i for i, m in enumerate(models)}
    per_item = np.zeros((len(item_codes), len(models), len(models)))
    a = outcomes["model_a"].map(index).to_numpy()
    b = outcomes["model_b"].map(index).to_numpy()
    score = outcomes["score_a"].to_numpy()
    np.add.at(per_item, (item_index, a, b), score)
    np.add.at(per_item, (item_index, b, a), 1.0 - score)
    rng = np.random.default_rng(seed)
    samples = np.empty((bootstrap_samples, len(models)))
    for sample in range(bootstrap_samples):
        weights = np.bincount(
            rng.integers(0, len(item_codes), size=len(item_codes)), minlength=len(item_codes)
        )
        samples[sample] = bradley_terry_scores(np.tensordot(weights, per_item, axes=1), prior=prior)
    tail = (1.0 - confidence) / 2.0 * 100.0
    if bootstrap_samples:
        low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    else:
        low = high = np.full(len(models), np.nan)
    frame = pd.DataFrame({"model": models, "score": scores, "ci_low": low, "ci_high": high})
    return frame.sort_values("score", ascending=False).reset_index(drop=True)


def agreement(judgments: pd.DataFrame) -> pd.DataFrame:
    """Krippendorff's alpha per dimension over regular items (units) × raters, nominal and ordinal.

    Codes: B better = 0, same = 1, A better = 2. Alpha is NaN where fewer than one item has two
    raters or all answers are identical (alpha undefined).
    """
    primary = _primary(judgments)
    raters = sorted(primary["rater_id"].unique())
    items = sorted(primary["item_id"].unique())
    out = []
    for dim in DIMENSIONS:
        matrix = np.full((len(raters), len(items)), np.nan)
        r_index = {r: i for i, r in enumerate(raters)}
        u_index = {u: i for i, u in enumerate(items)}
        for rater_id, item_id, answer in zip(
            primary["rater_id"], primary["item_id"], primary[dim], strict=True
        ):
            matrix[r_index[rater_id], u_index[item_id]] = ORDINAL_CODE[answer]
        pairable_units = int(((~np.isnan(matrix)).sum(axis=0) >= 2).sum()) if len(items) else 0
        row: dict[str, Any] = {"dimension": dim, "units": pairable_units}
        for level in ("nominal", "ordinal"):
            row[level] = krippendorff_alpha(matrix, level) if pairable_units else float("nan")  # type: ignore[arg-type]
        out.append(row)
    return pd.DataFrame(out)


def rater_quality(judgments: pd.DataFrame, min_gold_accuracy: float = 0.6) -> pd.DataFrame:
    """Per rater: ratings, gold accuracy, duplicate self-consistency, median seconds, flagged.

    gold_accuracy = matching answers / expected answers over the gold items' expected dimensions.
    duplicate_consistency = identical canonical answers / dimensions over (first, repeat) pairs.
    A rater is flagged when they answered gold items and their accuracy is below the threshold.
    """
    out = []
    for (rater_id, rater), group in judgments.groupby(["rater_id", "rater"]):
        regular = group[(group["kind"] == "regular") & ~group["is_duplicate"].astype(bool)]
        checks = correct = 0
        for _, row in group[group["kind"] == "gold"].iterrows():
            for dim, expected in (row["gold_expected"] or {}).items():
                checks += 1
                correct += int(row[dim] == expected)
        dup_checks = dup_same = 0
        for _, repeat in group[group["is_duplicate"].astype(bool)].iterrows():
            first = regular[regular["item_id"] == repeat["item_id"]]
            if first.empty:
                continue
            for dim in DIMENSIONS:
                dup_checks += 1
                dup_same += int(first.iloc[0][dim] == repeat[dim])
        gold_accuracy = correct / checks if checks else float("nan")
        elapsed = group["elapsed_ms"].dropna()
        out.append(
            {
                "rater_id": int(rater_id),
                "rater": rater,
                "ratings": len(regular),
                "gold_checks": checks,
                "gold_accuracy": gold_accuracy,
                "duplicate_checks": dup_checks,
                "duplicate_consistency": dup_same / dup_checks if dup_checks else float("nan"),
                "median_seconds": float(elapsed.median()) / 1000.0 if len(elapsed) else float("nan"),
                "flagged": bool(checks and gold_accuracy < min_gold_accuracy),
            }
        )
    return pd.DataFrame(out)

"""Nested quality tiers 256p ⊃ 360p ⊃ 540p ⊃ 720p, a decision row per filter, the funnel, SFT candidates.

Only clips kept by dedup enter the 256p tier; a clip enters tier k+1 only if it passed tier k.
In each tier every filter is evaluated in a fixed order and recorded (value, threshold, passed);
the first failing one is `decisive`. The funnel (Figure 4 of the report) is derived from the
decision table alone: after each (tier, filter) step, the clips still standing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.config import TIER_NAMES, SftConfig, TierThresholds
from curation.schemas import SFT_CANDIDATES_SCHEMA, TIER_DECISIONS_SCHEMA, TIERS_SCHEMA

# (filter name, signal column or derived value, comparison, threshold field). Order = funnel order.
FILTERS: tuple[tuple[str, str, str, str], ...] = (
    ("resolution", "short_side", ">=", "min_short_side"),
    ("duration", "duration_s", ">=", "min_duration_s"),
    ("motion_min", "motion_p95", ">=", "min_motion"),
    ("motion_max", "motion_mean", "<=", "max_motion"),
    ("clarity", "sharpness", ">=", "min_sharpness"),
    ("technical_quality", "brisque", "<=", "max_brisque"),
    ("aesthetic", "aesthetic", ">=", "min_aesthetic"),
    ("text", "text_area", "<=", "max_text_area"),
    ("watermark", "watermark", "<=", "max_watermark"),
    ("black_border", "border_ratio", "<=", "max_border_ratio"),
)


def _value(signal: dict[str, Any], column: str) -> float | None:
    if column == "short_side":
        # The picture inside black bars is what a crop would keep.
        return float(
            min(signal["border_x1"] - signal["border_x0"], signal["border_y1"] - signal["border_y0"])
        )
    value = signal.get(column)
    return None if value is None else float(value)


def decide_tiers(signals: pa.Table, kept_ids: set[str], tiers: dict[str, TierThresholds]) -> pa.Table:
    """The decision table (`TIER_DECISIONS_SCHEMA`) for the kept clips.

    A missing signal value (e.g. OCR skipped) fails its filter: unknown is not good enough.
    """
    rows: dict[str, list[Any]] = {name: [] for name in TIER_DECISIONS_SCHEMA.names}
    entering = sorted(
        (r for r in signals.to_pylist() if r["clip_id"] in kept_ids), key=lambda r: r["clip_id"]
    )
    for tier_name in TIER_NAMES:
        thresholds = tiers[tier_name]
        survivors = []
        for signal in entering:
            decisive_found = False
            for order, (filter_name, column, comparison, field) in enumerate(FILTERS):
                value = _value(signal, column)
                threshold = float(getattr(thresholds, field))
                passed = value is not None and (
                    value >= threshold if comparison == ">=" else value <= threshold
                )
                rows["clip_id"].append(signal["clip_id"])
                rows["tier"].append(tier_name)
                rows["filter"].append(filter_name)
                rows["order"].append(order)
                rows["passed"].append(passed)
                rows["value"].append(value)
                rows["threshold"].append(threshold)
                rows["comparison"].append(comparison)
                rows["decisive"].append(not passed and not decisive_found)
                decisive_found = decisive_found or not passed
            if not decisive_found:
                survivors.append(signal)
        entering = survivors
    return pa.table(rows, schema=TIER_DECISIONS_SCHEMA)


def tier_membership(decisions: pa.Table) -> pa.Table:
    """One row per clip in at least the 256p tier: membership flags, highest tier, where it stopped.

    Clips that entered 256p and failed it appear only in the decision table.
    """
    by_clip: dict[str, dict[str, Any]] = {}
    for row in decisions.to_pylist():
        entry = by_clip.setdefault(row["clip_id"], {"tiers": {}, "failed_tier": None, "failed_filter": None})
        passed_so_far = entry["tiers"].get(row["tier"], True)
        entry["tiers"][row["tier"]] = passed_so_far and row["passed"]
        if row["decisive"]:
            entry["failed_tier"], entry["failed_filter"] = row["tier"], row["filter"]
    table: dict[str, list[Any]] = {name: [] for name in TIERS_SCHEMA.names}
    for clip_id in sorted(by_clip):
        entry = by_clip[clip_id]
        flags = {name: bool(entry["tiers"].get(name, False)) for name in TIER_NAMES}
        highest = None
        for name in TIER_NAMES:
            if not flags[name]:
                break
            highest = name
        if highest is None:
            continue
        table["clip_id"].append(clip_id)
        table["highest_tier"].append(highest)
        for name in TIER_NAMES:
            table[f"tier_{name}"].append(flags[name])
        table["failed_tier"].append(entry["failed_tier"])
        table["failed_filter"].append(entry["failed_filter"])
    return pa.table(table, schema=TIERS_SCHEMA)


def funnel(n_clips: int, n_unique: int, decisions: pa.Table) -> list[tuple[str, int]]:
    """[(stage, clips remaining)]: all clips, after dedup, then after each tier's filters in order."""
    steps: list[tuple[str, int]] = [("clips", n_clips), ("dedup", n_unique)]
    rows = decisions.to_pylist()
    for tier_name in TIER_NAMES:
        tier_rows = [r for r in rows if r["tier"] == tier_name]
        entered = {r["clip_id"] for r in tier_rows}
        failed_at = {r["clip_id"]: r["order"] for r in tier_rows if r["decisive"]}
        for order, (filter_name, *_rest) in enumerate(FILTERS):
            remaining = sum(1 for c in entered if failed_at.get(c, len(FILTERS)) > order)
            steps.append((f"{tier_name}:{filter_name}", remaining))
    return steps


def draw_funnel(steps: list[tuple[str, int]], path: Path) -> Path:
    """Draw the funnel as a horizontal bar chart PNG (written atomically)."""
    import os
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [name for name, _ in steps]
    counts = [count for _, count in steps]
    tier_colours = dict(zip(TIER_NAMES, ("#4c72b0", "#55a868", "#c44e52", "#8172b2"), strict=True))
    colours = ["#555555", "#777777"] + [tier_colours[name.split(":")[0]] for name in labels[2:]]
    figure, axis = plt.subplots(figsize=(8, 0.28 * len(steps) + 1.2))
    axis.barh(range(len(steps)), counts, color=colours)
    axis.set_yticks(range(len(steps)), labels, fontsize=7)
    axis.invert_yaxis()
    for y, count in enumerate(counts):
        axis.text(count, y, f" {count}", va="center", fontsize=7)
    axis.set_xlabel("clips remaining")
    axis.set_title("Curation funnel (cf. HunyuanVideo Fig. 4)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-funnel-", suffix=".png", dir=path.parent)
    os.close(handle)
    figure.savefig(tmp, dpi=120)
    plt.close(figure)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def sft_candidates(signals: pa.Table, membership: pa.Table, config: SftConfig) -> pa.Table:
    """Top-tier clips ranked by aesthetic / 10 × min(1, motion / 2 px/frame), proposed to raters.

    The tiers below the top join, one at a time, while the admitted clips number fewer than
    `config.min_candidates`; the ranking then runs over all admitted clips.
    """
    highest = [r["highest_tier"] for r in membership.to_pylist()]
    admitted: set[str] = set()
    for tier in reversed(TIER_NAMES):
        admitted.add(tier)
        if sum(h in admitted for h in highest) >= config.min_candidates:
            break
    top = {r["clip_id"] for r in membership.to_pylist() if r["highest_tier"] in admitted}
    scored = []
    for row in signals.to_pylist():
        if row["clip_id"] in top:
            score = (row["aesthetic"] or 0.0) / 10.0 * min(1.0, row["motion_mean"] / 2.0)
            scored.append((score, row["clip_id"]))
    scored.sort(key=lambda item: (-item[0], item[1]))
    scored = scored[: config.max_candidates]
    return pa.table(
        {
            "clip_id": [clip_id for _, clip_id in scored],
            "rank": list(range(1, len(scored) + 1)),
            "score": [score for score, _ in scored],
            "status": ["proposed"] * len(scored),
        },
        schema=SFT_CANDIDATES_SCHEMA,
    )

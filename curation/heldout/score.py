"""The curation signals on held-out items, and their accuracy against the hand labels.

Each item is read by the chain's own decode (`curation.decode`), its shots found by
`curation.scenes.detect_shots`, and `curation.clip_signals.clip_signal_row` computed over its
longest detected shot as one clip, as the chain never makes a clip across a cut (the labels other
than cuts hold for every shot of an item). Decisions are the 256p tier's gates, as in
`curation.democorpus.accuracy`:

| signal | truth (manifest) | prediction |
|---|---|---|
| cuts F1 | `cuts` | detected shot starts, ±2 frames |
| static | `static` | motion_p95 < min_motion |
| text | `text` | OCR text_area > max_text_area |
| watermark | `watermark` | watermark score > max_watermark |
| borders | `border` | border_ratio > max_border_ratio |

A label that is None is not scored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.clip_signals import ClipSignalStream
from curation.config import CurationConfig
from curation.decode import decode_for_analysis, probe_video
from curation.democorpus.accuracy import match_cuts
from curation.heldout.build import HeldoutItem
from curation.scenes import Clip, clip_id_for, detect_shots

SIGNALS = ("static", "text", "watermark", "border")


def item_signals(path: Path, config: CurationConfig, cheap_only: bool = False) -> dict[str, Any]:
    """The signal row of the item at `path` (one clip: its longest shot) plus `cut_frames`.

    `cheap_only` skips OCR, BRISQUE, aesthetic and embedding (`text_area` is then None).
    """
    info = probe_video(path, config.probe)
    video = decode_for_analysis(info, config.signals.analysis_height, max_frames=config.probe.max_frames)
    shots = detect_shots(video, config.scenes)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    start, end = max(shots, key=lambda shot: shot[1] - shot[0])
    times = [*video.times.tolist(), float(video.times[-1]) + 1.0 / info.fps]
    clip = Clip(clip_id_for(sha, start, end), str(path), sha, 0, 0, start, end, times[start], times[end],
                info.fps, video.width, video.height, start)  # fmt: skip
    # A second pass computes the row while decoding, as curation does, once the clip is known.
    stream = ClipSignalStream([clip], config.signals, cheap_only=cheap_only)
    decode_for_analysis(
        info, config.signals.analysis_height, max_frames=config.probe.max_frames, on_frame=stream
    )
    (row,), _ = stream.finish()
    row["cut_frames"] = [start for start, _ in shots[1:]]
    return row


def predictions(row: dict[str, Any], config: CurationConfig) -> dict[str, bool]:
    """The 256p tier's decision per signal for one item's row (see the module table)."""
    gate = config.tiers["256p"]
    return {
        "static": row["motion_p95"] < gate.min_motion,
        "text": row["text_area"] is not None and row["text_area"] > gate.max_text_area,
        "watermark": row["watermark"] > gate.max_watermark,
        "border": row["border_ratio"] > gate.max_border_ratio,
    }


@dataclass(frozen=True)
class HeldoutReport:
    """Accuracy per signal (NaN where no item of the split has that label), cut F1, and misses."""

    split: str
    accuracy: dict[str, float]
    scored: dict[str, int]
    cut_f1: float
    cut_precision: float
    cut_recall: float
    misses: list[str]

    def rows(self) -> list[tuple[str, float, int]]:
        """(metric, value, items scored) for printing."""
        cut_items = self.scored.get("cuts", 0)
        return [("scene cuts F1 (±2 frames)", self.cut_f1, cut_items)] + [
            (f"{name} accuracy", self.accuracy[name], self.scored[name]) for name in SIGNALS
        ]


def score_heldout(
    items: Sequence[HeldoutItem], rows: dict[str, dict[str, Any]], config: CurationConfig, split: str
) -> HeldoutReport:
    """Score the `split` items against their labels; `rows` maps item name → `item_signals` row."""
    chosen = [item for item in items if item.split == split]
    hits = {name: 0 for name in SIGNALS}
    scored = {name: 0 for name in SIGNALS}
    misses = []
    matched = n_true = n_predicted = 0
    for item in chosen:
        row = rows[item.name]
        predicted = predictions(row, config)
        for name in SIGNALS:
            truth = getattr(item.labels, name)
            if truth is None:
                continue
            scored[name] += 1
            if truth == predicted[name]:
                hits[name] += 1
            else:
                misses.append(f"{item.name}: {name} labelled {truth}, predicted {predicted[name]}")
        matched += match_cuts(item.labels.cuts, row["cut_frames"], 2)
        n_true += len(item.labels.cuts)
        n_predicted += len(row["cut_frames"])
    precision = matched / n_predicted if n_predicted else 1.0
    recall = matched / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return HeldoutReport(
        split=split,
        accuracy={name: hits[name] / scored[name] if scored[name] else float("nan") for name in SIGNALS},
        scored={**scored, "cuts": sum(bool(item.labels.cuts) for item in chosen)},
        cut_f1=f1,
        cut_precision=precision,
        cut_recall=recall,
        misses=misses,
    )

"""Scoring curation outputs against the demo corpus's labels.json.

Each clip is matched to the labelled shot it overlaps most (≥ 50 % of the clip). Real packaged
videos carry no shot labels and are left out of every score except nothing: they only take part
in the run. Decision rules are the tier-256p thresholds of the config (the first gate a clip
meets), so the scores measure the filters the pipeline applies.

| metric | truth | prediction |
|---|---|---|
| cut F1 | labelled cut frames | starts of detected shots (clips with piece 0, dropped shots), ±2 frames |
| static vs moving | static or slow_motion | motion_p95 < min_motion |
| text-heavy | text_area_ratio ≥ 0.05 | OCR text_area > max_text_area |
| watermark | logo rendered | watermark score > max_watermark |
| borders | letterbox or pillarbox | border_ratio > max_border_ratio |
| duplicates found | clip pairs whose shots copy the same original | same dedup group |
| (exact copies) | byte-identical files | quarantined at ingest by content hash (counted apart) |
| false merges | clip pairs of different originals | same dedup group |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.config import CurationConfig
from curation.democorpus.labels import CorpusLabels, ShotLabel


@dataclass(frozen=True)
class AccuracyReport:
    """Scores (0-1) and the counts behind them."""

    cut_precision: float
    cut_recall: float
    cut_f1: float
    static_accuracy: float
    text_heavy_accuracy: float
    watermark_accuracy: float
    border_accuracy: float
    duplicates_found: float
    false_merges: int
    counts: dict[str, int]

    def rows(self) -> list[tuple[str, float, str]]:
        """(metric, value, target) rows for printing."""
        return [
            ("scene cuts F1 (±2 frames)", self.cut_f1, ">= 0.95"),
            ("static vs moving accuracy", self.static_accuracy, ">= 0.95"),
            ("text-heavy accuracy", self.text_heavy_accuracy, ">= 0.90"),
            ("watermark accuracy", self.watermark_accuracy, ">= 0.90"),
            ("borders accuracy", self.border_accuracy, ">= 0.95"),
            ("duplicates found", self.duplicates_found, ">= 0.95"),
            ("false merges of different shots", float(self.false_merges), "== 0"),
        ]


def match_cuts(truth: list[int], predicted: list[int], tolerance: int) -> int:
    """Greedy one-to-one matches within `tolerance` frames."""
    used: set[int] = set()
    matched = 0
    for cut in truth:
        candidates = [p for p in predicted if abs(p - cut) <= tolerance and p not in used]
        if candidates:
            used.add(min(candidates, key=lambda p: abs(p - cut)))
            matched += 1
    return matched


def _accuracy(pairs: list[tuple[bool, bool]]) -> float:
    return sum(truth == predicted for truth, predicted in pairs) / len(pairs) if pairs else float("nan")


def score_corpus(
    labels: CorpusLabels,
    clips: pa.Table,
    signals: pa.Table,
    deduped: pa.Table,
    quarantine: pa.Table,
    config: CurationConfig,
    tolerance: int = 2,
) -> AccuracyReport:
    """Score a curation run over the corpus folder against its labels (see module table)."""
    by_file = {video.file: video for video in labels.videos}
    clip_rows = clips.to_pylist()
    signal_of = {r["clip_id"]: r for r in signals.to_pylist()}
    group_of = {r["clip_id"]: r["group_id"] for r in deduped.to_pylist()}
    gate = config.tiers["256p"]

    true_positive = n_true = n_predicted = 0
    starts: dict[str, set[int]] = {}
    for row in clip_rows:
        if row["piece_index"] == 0:
            starts.setdefault(Path(row["source_path"]).name, set()).add(row["start_frame"])
    for row in quarantine.to_pylist():
        if row["stage"] == "clips" and row["start_frame"] is not None:
            starts.setdefault(Path(row["path"]).name, set()).add(row["start_frame"])
    for file, video in by_file.items():
        if not video.cuts_known or file not in starts:
            continue
        predicted = sorted(s for s in starts[file] if s > 0)
        true_positive += match_cuts(video.cuts, predicted, tolerance)
        n_true += len(video.cuts)
        n_predicted += len(predicted)
    precision = true_positive / n_predicted if n_predicted else 1.0
    recall = true_positive / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    shot_of: dict[str, ShotLabel] = {}
    for row in clip_rows:
        labelled = by_file.get(Path(row["source_path"]).name)
        if labelled is None or not labelled.cuts_known:
            continue
        best = max(
            labelled.shots,
            key=lambda s: min(s.end_frame, row["end_frame"]) - max(s.start_frame, row["start_frame"]),
        )
        overlap = min(best.end_frame, row["end_frame"]) - max(best.start_frame, row["start_frame"])
        if overlap >= 0.5 * (row["end_frame"] - row["start_frame"]) and row["clip_id"] in signal_of:
            shot_of[row["clip_id"]] = best

    static, text, watermark, border = [], [], [], []
    for clip_id, shot in shot_of.items():
        signal: dict[str, Any] = signal_of[clip_id]
        static.append((bool(shot.static or shot.slow_motion), signal["motion_p95"] < gate.min_motion))
        if signal["text_area"] is not None:
            text.append((bool(shot.text_heavy), signal["text_area"] > gate.max_text_area))
        watermark.append((bool(shot.watermark), signal["watermark"] > gate.max_watermark))
        border.append(
            (shot.border in ("letterbox", "pillarbox"), signal["border_ratio"] > gate.max_border_ratio)
        )

    shot_ids = {shot.shot_id: shot for video in labels.videos for shot in video.shots}

    def root(shot: ShotLabel) -> str:
        while shot.duplicate_of is not None:
            shot = shot_ids[shot.duplicate_of]
        return shot.shot_id

    ids = sorted(c for c in shot_of if c in group_of)
    true_pairs = found = false_merges = 0
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            same_root = root(shot_of[a]) == root(shot_of[b])
            same_group = group_of[a] == group_of[b]
            true_pairs += same_root
            found += same_root and same_group
            false_merges += (not same_root) and same_group
    exact_copies = {v.file for v in labels.videos if v.duplicate_kind == "exact"}
    caught = {
        Path(r["path"]).name
        for r in quarantine.to_pylist()
        if r["stage"] == "ingest" and Path(r["path"]).name in exact_copies
    }
    return AccuracyReport(
        cut_precision=precision,
        cut_recall=recall,
        cut_f1=f1,
        static_accuracy=_accuracy(static),
        text_heavy_accuracy=_accuracy(text),
        watermark_accuracy=_accuracy(watermark),
        border_accuracy=_accuracy(border),
        duplicates_found=found / true_pairs if true_pairs else float("nan"),
        false_merges=false_merges,
        counts={
            "true_cuts": n_true,
            "predicted_cuts": n_predicted,
            "scored_clips": len(shot_of),
            "duplicate_pairs": true_pairs,
            "exact_copy_files": len(exact_copies),
            "exact_copy_files_caught_at_ingest": len(caught),
            "text_heavy_clips": sum(t for t, _ in text),
            "watermark_clips": sum(t for t, _ in watermark),
            "border_clips": sum(t for t, _ in border),
            "low_motion_clips": sum(t for t, _ in static),
        },
    )

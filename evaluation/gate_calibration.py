"""Placing the video gates between real footage and degenerate output.

Real footage: clips cut from real videos (the caller passes their paths; the platform uses the ones
that ship in packages, `curation.democorpus.photo_pool.real_video_paths`), never our own renderer.
Each video is decoded once, frames resized so the short side is `size` and centre-cropped to
size × size; windows of `frames` consecutive frames that span a shot cut are skipped (a cut: a mean
absolute grey difference between neighbours, at 64 × 64, above 5 × the video's median + 5 levels),
because generated videos are single shots. `split_clips` alternates each video's windows between a
calibration split (places thresholds) and a report split (checks them).

Degenerate sets, one clip per template real clip, same shape:
- `noise`: uniform i.i.d. RGB noise in every frame;
- `constant`: one random colour for the whole clip;
- `frozen`: the template's first frame repeated;
- `flicker_black_white`: frames alternating black and white;
- `flicker_brightness`: the template's frames with brightness alternating ×0.6 / ×1.4.

Generated videos reach the gates as H.264 files, so every clip, real or degenerate, is passed
through the same encoder first (`through_h264`: `media.video.write_video` at CRF 18, the serving
writer's quality, and decoded back): a frozen frame then carries the codec's small frame-to-frame
drift, as a frozen generation would.

`calibrate_gates` places each threshold halfway between the worst real calibration clip and the
best clip of the degenerate sets lying wholly and clearly (by 5 % of its value) beyond it (the sets a
gate "catches").
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from evaluation.video_eval_config import GateCalibration, MetricGate
from evaluation.video_metrics import METRICS, VideoEvaluationReport
from media.video import iter_clip, read_clip, write_video

# (frames, size, fps) of the clips each preset is calibrated on: what its profile generates.
CALIBRATION_CLIPS = {"tiny": (9, 64, 8.0), "paper": (33, 256, 24.0)}
DEGENERATE_SETS = ("noise", "constant", "frozen", "flicker_black_white", "flicker_brightness")
# Metrics a gate may be placed on. Left out: text-video alignment (no weights ship offline, so there
# is nothing to calibrate) and the aesthetic stand-in (a hand-made proxy that pure noise games: noise
# scores ≈ 9.4 / 10, above every real clip), which is measured and reported but trusted to fail nothing.
GATE_CANDIDATES = (
    "temporal_flickering",
    "motion_smoothness",
    "dynamic_degree",
    "subject_consistency_mobilenet_v2",
    "background_consistency_mobilenet_v2",
    "imaging_quality_brisque",
)


def _square(frame: np.ndarray, size: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = size / min(h, w)
    resized = cv2.resize(
        frame, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
    return resized[top : top + size, left : left + size]


def _cut_after(small_grey: np.ndarray) -> set[int]:
    """Indices t where a cut lies between frames t and t+1 (see the module docstring)."""
    diffs = np.abs(np.diff(small_grey.astype(np.float32), axis=0)).mean(axis=(1, 2))
    return set(np.flatnonzero(diffs > 5.0 * np.median(diffs) + 5.0).tolist())


def real_footage_clips(
    videos: Mapping[str, Path], frames: int, size: int, per_video: int
) -> list[tuple[str, np.ndarray]]:
    """(name "<video>@<start frame>", uint8 (frames, size, size, 3)) clips: up to `per_video` windows
    per video, evenly spread over its cut-free windows, in video then time order."""
    clips: list[tuple[str, np.ndarray]] = []
    for video_name, path in sorted(videos.items()):
        squares, small = [], []
        for frame in iter_clip(path):
            squares.append(_square(frame, size))
            small.append(
                cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
            )
        cuts = _cut_after(np.stack(small))
        windows, start = [], 0
        while start + frames <= len(squares):
            cut = next((t for t in range(start, start + frames - 1) if t in cuts), None)
            if cut is None:
                windows.append(start)
                start += frames
            else:
                start = cut + 1
        if not windows:
            continue
        picks = np.unique(np.linspace(0, len(windows) - 1, min(per_video, len(windows))).round().astype(int))
        for index in picks:
            first = windows[index]
            clips.append((f"{video_name}@{first}", np.stack(squares[first : first + frames])))
    return clips


def split_clips(
    clips: Sequence[tuple[str, np.ndarray]],
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(calibration, report): each source video's clips alternate between the two, first to calibration."""
    calibration: list[tuple[str, np.ndarray]] = []
    report: list[tuple[str, np.ndarray]] = []
    seen: dict[str, int] = {}
    for name, clip in clips:
        source = name.split("@")[0]
        (calibration if seen.get(source, 0) % 2 == 0 else report).append((name, clip))
        seen[source] = seen.get(source, 0) + 1
    return calibration, report


def degenerate_sets(
    templates: Sequence[tuple[str, np.ndarray]], seed: int = 0
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every degenerate set of the module docstring, one clip per template, same shapes."""
    rng = np.random.default_rng(seed)
    sets: dict[str, list[tuple[str, np.ndarray]]] = {name: [] for name in DEGENERATE_SETS}
    for name, clip in templates:
        t = clip.shape[0]
        sets["noise"].append((f"noise<{name}>", rng.integers(0, 256, clip.shape, dtype=np.uint8)))
        colour = rng.integers(0, 256, 3, dtype=np.uint8)
        sets["constant"].append((f"constant<{name}>", np.broadcast_to(colour, clip.shape).copy()))
        sets["frozen"].append((f"frozen<{name}>", np.repeat(clip[:1], t, axis=0)))
        black_white = np.zeros_like(clip)
        black_white[1::2] = 255
        sets["flicker_black_white"].append((f"flicker_black_white<{name}>", black_white))
        gain = np.where(np.arange(t) % 2 == 0, 0.6, 1.4).reshape(t, 1, 1, 1)
        flickering = np.clip(clip.astype(np.float32) * gain, 0, 255).round().astype(np.uint8)
        sets["flicker_brightness"].append((f"flicker_brightness<{name}>", flickering))
    return sets


def _values(report: VideoEvaluationReport, metric: str) -> list[float | None]:
    return [row["metrics"][metric] for row in report.videos]


def _set_mean(report: VideoEvaluationReport, metric: str) -> float | None:
    values = _values(report, metric)
    return (
        None
        if any(v is None for v in values)
        else float(np.mean([float(v) for v in values if v is not None]))
    )


def through_h264(
    clips: Sequence[tuple[str, np.ndarray]], fps: float, crf: int = 18
) -> list[tuple[str, np.ndarray]]:
    """Each clip encoded with the platform's H.264 writer and decoded back (same names, shapes)."""
    out = []
    with tempfile.TemporaryDirectory(prefix="gate-calibration-") as folder:
        for index, (name, clip) in enumerate(clips):
            path = Path(folder) / f"{index}.mp4"
            write_video(path, clip, fps=fps, crf=crf)
            out.append((name, read_clip(path)))
    return out


def calibrate_gates(
    real_calibration: VideoEvaluationReport,
    real_report: VideoEvaluationReport,
    degenerate: Mapping[str, VideoEvaluationReport],
    metrics: Sequence[str],
    min_relative_gap: float = 0.05,
) -> list[MetricGate]:
    """One gate per metric in `metrics` that separates at least one degenerate set clearly from the
    real calibration clips; metrics that separate none get no gate.

    A degenerate set is *caught* when every one of its clips is worse than the worst real clip by at
    least `min_relative_gap` × |worst real value| (or has the metric undefined, which fails the gate
    too). The threshold is the midpoint between the worst real clip and the best clip of any caught
    set: the widest margin between the two samples. A set that overlaps the real clips, or clears
    them by a hair, is not a reason to gate: such a threshold would fail real footage just beyond
    the calibration clips.
    """
    gates = []
    for metric in metrics:
        higher = METRICS[metric].higher_is_better
        real = [float(v) for v in _values(real_calibration, metric) if v is not None]
        report = [float(v) for v in _values(real_report, metric) if v is not None]
        if len(real) != len(real_calibration.videos) or len(report) != len(real_report.videos):
            raise ValueError(f"calibrate_gates: {metric} is undefined on some real clip; it cannot be gated")
        worst = min(real) if higher else max(real)

        gap = min_relative_gap * abs(worst)

        def beyond(
            value: float | None, worst: float = worst, higher: bool = higher, gap: float = gap
        ) -> bool:
            return value is None or (value < worst - gap if higher else value > worst + gap)

        caught = [
            name for name, result in degenerate.items() if all(beyond(v) for v in _values(result, metric))
        ]
        defined = [float(v) for name in caught for v in _values(degenerate[name], metric) if v is not None]
        if not defined:
            continue
        nearest = max(defined) if higher else min(defined)
        gates.append(
            MetricGate(
                metric=metric,
                threshold=(worst + nearest) / 2.0,
                higher_is_better=higher,
                catches=tuple(sorted(caught)),
                calibration=GateCalibration(
                    real_worst=worst,
                    real_mean=float(np.mean(real)),
                    real_report_worst=min(report) if higher else max(report),
                    real_report_mean=float(np.mean(report)),
                    nearest_degenerate=nearest,
                    degenerate={name: _set_mean(result, metric) for name, result in degenerate.items()},
                    clips=(len(real), len(report), len(next(iter(degenerate.values())).videos)),
                ),
            )
        )
    return gates

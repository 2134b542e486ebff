"""Offline evaluation of a set of videos: per-video metrics, set aggregates, calibrated gates.

`evaluate_videos(paths, prompts, reference, config)` is the one entry point: the `eval-videos` CLI,
the `generations` / `champion` assets and MLflow logging all call it (or `evaluate_clips` for
decoded arrays) and read the same `VideoEvaluationReport`.

Metrics (`METRICS` holds each one's definition and units; the functions' docstrings give the full
definition and the VBench dimension it follows):

| key | from | units | better |
|---|---|---|---|
| temporal_flickering | `temporal_metrics` (VBench) | [0, 1] | higher |
| motion_smoothness | `temporal_metrics` (VBench protocol, DIS interpolator) | [0, 1] | higher |
| dynamic_degree | `temporal_metrics` (DIS flow p95) | px/frame at 256 px | gate: floor |
| subject_consistency_mobilenet_v2 | `feature_metrics` (VBench formula) | cosine ≤ 1 | higher |
| background_consistency_mobilenet_v2 | `feature_metrics` (VBench formula) | cosine ≤ 1 | higher |
| imaging_quality_brisque | `media.image_quality` (OpenCV BRISQUE, LIVE) | ≈ 0 … 100 | lower |
| aesthetic_heuristic_standin | `media.image_quality` stand-in (not a learned model) | 0 … 10 | higher |
| text_video_alignment | `text_video_alignment` (CLIP / X-CLIP, local weights) | cosine | higher |
| frechet_distance_mobilenet_v2 | `feature_metrics`, per set against `reference` | squared features | lower |

A metric that cannot run says why in `status` ("not configured", "no prompts", "no reference"); it
never reports an estimate in place of a value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from evaluation import feature_metrics, temporal_metrics
from evaluation.text_video_alignment import load_text_video_aligner
from evaluation.video_eval_config import MetricGate, VideoEvalConfig
from media.image_quality import HeuristicAestheticStandIn, brisque
from media.threads import cpu_threads
from media.video import VideoReadError, iter_clip

# A frame whose grey levels vary less than this (std, 8-bit levels) is flat: BRISQUE is undefined on it.
FLAT_FRAME_STD = 1.0


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is: `definition` (one line; the function's docstring has the full one) and units."""

    key: str
    definition: str
    units: str
    higher_is_better: bool
    scope: str = "video"  # "video": one value per video, aggregated; "set": one value per set


METRICS: dict[str, MetricSpec] = {
    spec.key: spec
    for spec in (
        MetricSpec(
            "temporal_flickering",
            "VBench temporal flickering: (255 − mean |frame_t − frame_t+1|) / 255",
            "fraction [0, 1]",
            True,
        ),
        MetricSpec(
            "motion_smoothness",
            "VBench motion smoothness protocol, DIS-flow midpoint interpolator: (255 − MAE of odd frames) / 255",
            "fraction [0, 1]",
            True,
        ),
        MetricSpec(
            "dynamic_degree",
            "mean over frame pairs of the 95th-percentile DIS optical-flow magnitude",
            "px/frame at a 256-px short side",
            True,
        ),
        MetricSpec(
            "subject_consistency_mobilenet_v2",
            "VBench consistency formula on ImageNet MobileNetV2 features of the central region",
            "cosine similarity (≤ 1)",
            True,
        ),
        MetricSpec(
            "background_consistency_mobilenet_v2",
            "VBench consistency formula on ImageNet MobileNetV2 features of the border region",
            "cosine similarity (≤ 1)",
            True,
        ),
        MetricSpec(
            "imaging_quality_brisque",
            "mean OpenCV BRISQUE (LIVE model) of evenly spaced frames; undefined on flat frames",
            "BRISQUE (≈ 0 pristine … 100 poor)",
            False,
        ),
        MetricSpec(
            "aesthetic_heuristic_standin",
            "hand-made stand-in, not a learned aesthetic model: colourfulness, contrast, exposure, sharpness",
            "0 … 10",
            True,
        ),
        MetricSpec(
            "text_video_alignment",
            "CLIPSIM (mean frame–prompt CLIP cosine) or X-CLIP video–prompt cosine, local weights",
            "cosine similarity [−1, 1]",
            True,
        ),
        MetricSpec(
            "frechet_distance_mobilenet_v2",
            "Fréchet distance between Gaussians of per-clip mean MobileNetV2 features, generated vs reference",
            "squared feature units",
            False,
            scope="set",
        ),
    )
}


class VideoInputError(ValueError):
    """A video, prompt list or reference set cannot be evaluated; the message names the input."""


@dataclass
class MetricSummary:
    """A metric over the evaluated set: `status` "ok" or why it did not run; aggregates over the
    videos where it is defined (`undefined` counts the others); `extractor` names the model used."""

    key: str
    status: str
    definition: str
    units: str
    higher_is_better: bool
    scope: str
    extractor: str | None = None
    count: int = 0
    undefined: int = 0
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass
class GateVerdict:
    """One gate applied to a set: `value` is the set mean (None if undefined on some video)."""

    metric: str
    value: float | None
    threshold: float
    comparison: str  # ">=" or "<="
    passed: bool
    catches: tuple[str, ...]
    reason: str


@dataclass
class VideoEvaluationReport:
    """Everything `evaluate_videos` measured; `to_dict()` is the `eval-videos --json` object."""

    preset: str
    videos: list[dict[str, Any]]
    metrics: dict[str, MetricSummary]
    gates: list[GateVerdict]
    passed: bool
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "preset": self.preset,
            "metrics": {key: asdict(summary) for key, summary in self.metrics.items()},
            "gates": [asdict(verdict) for verdict in self.gates],
            "videos": self.videos,
            "seconds": self.seconds,
        }

    def mlflow_metrics(self) -> dict[str, float]:
        """Flat numeric view for `mlflow.log_metrics`: `<metric>_mean` per metric that ran,
        `gate_<metric>_passed` (0/1) per gate and `gates_passed` (0/1)."""
        flat = {f"{key}_mean": s.mean for key, s in self.metrics.items() if s.mean is not None}
        flat |= {f"gate_{v.metric}_passed": float(v.passed) for v in self.gates}
        flat["gates_passed"] = float(self.passed)
        return flat


def _evenly(count: int, total: int) -> np.ndarray:
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))


def analysis_frames(video: np.ndarray, short_side: int) -> np.ndarray:
    """uint8 (T, H, W, 3) resized so the short side is `short_side` px (area down, cubic up)."""
    h, w = video.shape[1:3]
    if min(h, w) == short_side:
        return video
    scale = short_side / min(h, w)
    size = (round(w * scale), round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in video])


def imaging_quality_brisque(frames: np.ndarray) -> float | None:
    """Mean BRISQUE of RGB frames (F, H, W, 3); None when a frame is flat (grey std < 1 level), where
    BRISQUE's statistics are undefined and OpenCV would return 0, its best score."""
    scores = []
    for frame in frames:
        if float(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).std()) < FLAT_FRAME_STD:
            return None
        scores.append(brisque(frame))
    return float(np.mean(scores))


def _check_clip(name: str, video: np.ndarray) -> None:
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise VideoInputError(
            f"{name}: expected uint8 RGB frames (T, H, W, 3), got {video.dtype} {video.shape}"
        )
    if video.shape[0] < 3:
        raise VideoInputError(f"{name}: {video.shape[0]} frames; the temporal metrics need at least 3")


def evaluate_clips(
    clips: Sequence[tuple[str, np.ndarray]],
    prompts: Sequence[str] | None = None,
    reference: Sequence[tuple[str, np.ndarray]] | None = None,
    config: VideoEvalConfig | None = None,
) -> VideoEvaluationReport:
    """Evaluate decoded videos: `clips` are (name, uint8 (T, H, W, 3)); `prompts` (one per clip, same
    order) enable text–video alignment; `reference` clips enable the Fréchet distance. Runs with
    `config.cpu_threads` torch/OpenCV threads.

    Raises `VideoInputError` for an empty set, a malformed clip or a prompt count that does not match.
    """
    config = config or VideoEvalConfig.preset("paper")
    with cpu_threads(config.cpu_threads):
        return _evaluate_clips(clips, prompts, reference, config)


def _evaluate_clips(
    clips: Sequence[tuple[str, np.ndarray]],
    prompts: Sequence[str] | None,
    reference: Sequence[tuple[str, np.ndarray]] | None,
    config: VideoEvalConfig,
) -> VideoEvaluationReport:
    if not clips:
        raise VideoInputError("no videos to evaluate")
    if prompts is not None and len(prompts) != len(clips):
        raise VideoInputError(f"{len(prompts)} prompts for {len(clips)} videos; give one prompt per video")
    if reference is not None and len(reference) < 2:
        raise VideoInputError(f"reference: {len(reference)} videos; the Fréchet distance needs at least 2")
    for name, video in [*clips, *(reference or [])]:
        _check_clip(name, video)

    seconds: dict[str, float] = {}

    @contextmanager
    def clock(key: str) -> Iterator[None]:
        tic = time.perf_counter()
        yield
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - tic

    aligner = None
    if config.text_video_model and prompts is not None:
        aligner = load_text_video_aligner(config.text_video_model, config.text_video_frames)
    aesthetic = HeuristicAestheticStandIn()
    rows: list[dict[str, Any]] = []
    clip_features = []
    for index, (name, video) in enumerate(clips):
        values: dict[str, float | None] = {}
        with clock("resize"):
            frames = analysis_frames(video, config.analysis_short_side)
            picks = frames[_evenly(config.quality_frames, len(frames))]
        with clock("temporal_flickering"):
            values["temporal_flickering"] = temporal_metrics.temporal_flickering(frames)
        with clock("motion_smoothness"):
            values["motion_smoothness"] = temporal_metrics.motion_smoothness(frames)
        with clock("dynamic_degree"):
            values["dynamic_degree"] = temporal_metrics.dynamic_degree(frames)
        with clock("mobilenet_v2_features"):
            features = feature_metrics.frame_features(frames[_evenly(config.feature_frames, len(frames))])
            values["subject_consistency_mobilenet_v2"] = feature_metrics.subject_consistency(features)
            values["background_consistency_mobilenet_v2"] = feature_metrics.background_consistency(features)
            clip_features.append(features.clip_feature())
        with clock("imaging_quality_brisque"):
            values["imaging_quality_brisque"] = imaging_quality_brisque(picks)
        with clock("aesthetic_heuristic_standin"):
            values["aesthetic_heuristic_standin"] = aesthetic.score(list(picks))
        values["text_video_alignment"] = None
        if aligner is not None and prompts is not None:
            with clock("text_video_alignment"):
                values["text_video_alignment"] = aligner.score(video, prompts[index])
        rows.append(
            {
                "name": name,
                "frames": int(video.shape[0]),
                "height": int(video.shape[1]),
                "width": int(video.shape[2]),
                "prompt": prompts[index] if prompts is not None else None,
                "metrics": values,
            }
        )

    metrics = {key: _summarise(spec, rows) for key, spec in METRICS.items() if spec.scope == "video"}
    metrics["aesthetic_heuristic_standin"].extractor = aesthetic.name
    for key in ("subject_consistency_mobilenet_v2", "background_consistency_mobilenet_v2"):
        metrics[key].extractor = feature_metrics.FEATURE_EXTRACTOR
    alignment = metrics["text_video_alignment"]
    if aligner is None:
        alignment.status = "not configured" if not config.text_video_model else "no prompts"
    else:
        alignment.extractor = aligner.name
    with clock("frechet_distance_mobilenet_v2"):
        metrics["frechet_distance_mobilenet_v2"] = _frechet(np.stack(clip_features), reference)
    gates = [apply_gate(gate, metrics[gate.metric], rows) for gate in config.gates]
    return VideoEvaluationReport(
        preset=config.name,
        videos=rows,
        metrics=metrics,
        gates=gates,
        passed=all(verdict.passed for verdict in gates),
        seconds={key: round(value, 3) for key, value in seconds.items()},
    )


def _summarise(spec: MetricSpec, rows: list[dict[str, Any]]) -> MetricSummary:
    values = [row["metrics"][spec.key] for row in rows]
    defined = np.array([v for v in values if v is not None], dtype=np.float64)
    summary = MetricSummary(
        spec.key, "ok", spec.definition, spec.units, spec.higher_is_better, spec.scope,
        count=len(defined), undefined=len(values) - len(defined),
    )  # fmt: skip
    if len(defined):
        summary.mean, summary.median = float(defined.mean()), float(np.median(defined))
        summary.min, summary.max = float(defined.min()), float(defined.max())
    return summary


def _frechet(generated: np.ndarray, reference: Sequence[tuple[str, np.ndarray]] | None) -> MetricSummary:
    spec = METRICS["frechet_distance_mobilenet_v2"]
    summary = MetricSummary(
        spec.key, "ok", spec.definition, spec.units, spec.higher_is_better, spec.scope,
        extractor=feature_metrics.FEATURE_EXTRACTOR,
    )  # fmt: skip
    if reference is None:
        summary.status = "no reference"
        return summary
    if len(generated) < 2:
        summary.status = "needs at least 2 generated videos"
        return summary
    reference_features = np.stack(
        [feature_metrics.frame_features(video).clip_feature() for _, video in reference]
    )
    value = feature_metrics.frechet_distance(generated, reference_features)
    summary.count, summary.mean, summary.median, summary.min, summary.max = (
        len(generated),
        value,
        value,
        value,
        value,
    )
    return summary


def apply_gate(gate: MetricGate, summary: MetricSummary, rows: list[dict[str, Any]]) -> GateVerdict:
    """The verdict of one gate on a set: the set mean against the threshold; fails when the metric
    did not run or is undefined on any video (naming the videos)."""
    comparison = ">=" if gate.higher_is_better else "<="

    def verdict(value: float | None, passed: bool, reason: str) -> GateVerdict:
        return GateVerdict(gate.metric, value, gate.threshold, comparison, passed, gate.catches, reason)

    if summary.status != "ok" or summary.mean is None:
        return verdict(None, False, f"{gate.metric}: {summary.status}")
    if summary.undefined:
        names = [row["name"] for row in rows if row["metrics"][gate.metric] is None]
        return verdict(None, False, f"{gate.metric} undefined on {', '.join(names[:5])}")
    value = summary.mean
    passed = value >= gate.threshold if gate.higher_is_better else value <= gate.threshold
    return verdict(
        value,
        bool(passed),
        f"mean {value:.4g} {comparison if passed else 'fails ' + comparison} {gate.threshold:.4g}",
    )


def read_video(path: Path, max_frames: int) -> np.ndarray:
    """uint8 (T, H, W, 3) of `path`, at most `max_frames` evenly spaced frames; `VideoInputError`
    naming the file when it cannot be decoded."""
    try:
        frames = list(iter_clip(path))
    except VideoReadError as error:
        raise VideoInputError(str(error)) from error
    if not frames:
        raise VideoInputError(f"{path}: contains no video frames")
    video = np.stack(frames)
    return video[_evenly(max_frames, len(video))] if len(video) > max_frames else video


def evaluate_videos(
    paths: Sequence[Path],
    prompts: Sequence[str] | None = None,
    reference: Sequence[Path] | None = None,
    config: VideoEvalConfig | None = None,
) -> VideoEvaluationReport:
    """Evaluate video files (`evaluate_clips` on their decoded frames; names are the file names).

    `prompts` are one per path, in order; `reference` paths feed the Fréchet distance.
    Raises `VideoInputError` naming the file for anything that cannot be read.
    """
    config = config or VideoEvalConfig.preset("paper")
    clips = [(Path(p).name, read_video(Path(p), config.max_frames)) for p in paths]
    references = (
        [(Path(p).name, read_video(Path(p), config.max_frames)) for p in reference]
        if reference is not None
        else None
    )
    return evaluate_clips(clips, prompts, references, config)

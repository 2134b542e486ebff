"""`evaluate_videos` on files: the report's values, statuses, gate verdicts, JSON form and table image."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from evaluation.video_eval_config import GateCalibration, MetricGate, VideoEvalConfig
from evaluation.video_metrics import METRICS, VideoInputError, evaluate_clips, evaluate_videos
from evaluation.video_metrics_table import render_metrics_table
from media.video import write_video

PHOTO = Path(skimage.__file__).parent / "data" / "astronaut.png"
# Small and quick: 64-px analysis, 3 feature frames.
FAST = {"analysis_short_side": 64, "feature_frames": 3}


def _pan(start: int, frames: int = 7, size: int = 64) -> np.ndarray:
    photo = cv2.resize(cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB), (256, 256))
    return np.stack([photo[40 : 40 + size, start + 2 * t : start + 2 * t + size] for t in range(frames)])


def _gate(metric: str, threshold: float, higher: bool = True) -> MetricGate:
    calibration = GateCalibration(0.0, 0.0, 0.0, 0.0, 0.0, {}, (0, 0, 0))
    return MetricGate(metric, threshold, higher, ("test",), calibration)


def test_files_are_scored_and_reported(tmp_path: Path) -> None:
    paths = []
    for index, start in enumerate((0, 60, 120)):
        paths.append(tmp_path / f"pan{index}.mp4")
        write_video(paths[-1], _pan(start), fps=8)
    config = VideoEvalConfig.preset(
        "tiny",
        gates=(_gate("dynamic_degree", 1.0), _gate("imaging_quality_brisque", 1.0, higher=False)),
        **FAST,
    )
    report = evaluate_videos(paths, reference=paths[:2], config=config)
    assert [row["name"] for row in report.videos] == ["pan0.mp4", "pan1.mp4", "pan2.mp4"]
    assert report.videos[0]["frames"] == 7 and report.videos[0]["height"] == 64
    video_metrics = [key for key, spec in METRICS.items() if spec.scope == "video"]
    assert set(report.metrics) == set(METRICS)
    for key in video_metrics:
        values = [row["metrics"][key] for row in report.videos]
        if key == "text_video_alignment":
            assert values == [None] * 3 and report.metrics[key].status == "not configured"
            continue
        summary = report.metrics[key]
        assert summary.status == "ok" and summary.count == 3
        assert summary.mean == pytest.approx(np.mean(values)) and summary.min == min(values)
    # 2 px/frame at 64 px is 8 px/frame at 256 px.
    assert report.metrics["dynamic_degree"].mean == pytest.approx(8.0, rel=0.25)
    assert report.metrics["frechet_distance_mobilenet_v2"].status == "ok"
    assert report.metrics["frechet_distance_mobilenet_v2"].mean > 0
    dynamic, brisque = report.gates
    assert (
        dynamic.passed
        and dynamic.comparison == ">="
        and dynamic.value == report.metrics["dynamic_degree"].mean
    )
    assert not brisque.passed and brisque.comparison == "<=" and "fails" in brisque.reason
    assert report.passed is False
    as_json = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert as_json["passed"] is False and len(as_json["videos"]) == 3
    assert as_json["gates"][0]["metric"] == "dynamic_degree"
    flat = report.mlflow_metrics()
    assert flat["gates_passed"] == 0.0 and flat["gate_dynamic_degree_passed"] == 1.0
    assert "text_video_alignment_mean" not in flat and "temporal_flickering_mean" in flat
    png = render_metrics_table(report, tmp_path / "table.png")
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 400


def test_a_flat_video_has_no_brisque_and_fails_its_gate() -> None:
    flat = np.full((5, 64, 64, 3), 90, dtype=np.uint8)
    config = VideoEvalConfig.preset(
        "tiny", gates=(_gate("imaging_quality_brisque", 60.0, higher=False),), **FAST
    )
    report = evaluate_clips([("flat", flat), ("pan", _pan(0, frames=5))], config=config)
    assert report.videos[0]["metrics"]["imaging_quality_brisque"] is None
    assert report.metrics["imaging_quality_brisque"].undefined == 1
    assert report.metrics["imaging_quality_brisque"].count == 1
    (verdict,) = report.gates
    assert not verdict.passed and verdict.value is None and "undefined on flat" in verdict.reason
    assert report.metrics["frechet_distance_mobilenet_v2"].status == "no reference"


def test_bad_inputs_name_what_is_wrong(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    config = VideoEvalConfig.preset("tiny", **FAST)
    with pytest.raises(VideoInputError, match="broken.mp4: not a readable media file"):
        evaluate_videos([broken], config=config)
    with pytest.raises(VideoInputError, match="1 prompts for 2 videos"):
        evaluate_clips([("a", _pan(0)), ("b", _pan(9))], prompts=["x"], config=config)
    with pytest.raises(VideoInputError, match="short: 2 frames"):
        evaluate_clips([("short", _pan(0, frames=2))], config=config)
    with pytest.raises(VideoInputError, match="needs at least 2"):
        evaluate_clips([("a", _pan(0))], reference=[("r", _pan(5))], config=config)
    with pytest.raises(VideoInputError, match="no videos"):
        evaluate_clips([], config=config)


def test_paper_evaluation_runs_one_thread_per_process() -> None:
    assert VideoEvalConfig.preset("paper").cpu_threads == 1

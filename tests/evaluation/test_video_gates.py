"""The calibrated gates pass real footage and fail every degenerate set.

Real clips are the report split (never used to place thresholds) of clips cut from the real videos
that ship in packages; degenerate sets are built over a few of them (noise, constant colour, frozen
frame, black/white flicker, brightness flicker). Every clip goes through the H.264 writer first, as
generated videos do.
"""

from __future__ import annotations

import numpy as np
import pytest

from curation.democorpus.photo_pool import real_video_paths
from evaluation.gate_calibration import (
    CALIBRATION_CLIPS,
    DEGENERATE_SETS,
    calibrate_gates,
    degenerate_sets,
    real_footage_clips,
    split_clips,
    through_h264,
)
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import VideoEvaluationReport, evaluate_clips


def _check_preset(name: str, templates: int) -> None:
    frames, size, fps = CALIBRATION_CLIPS[name]
    config = VideoEvalConfig.preset(name)
    _, report = split_clips(
        through_h264(real_footage_clips(real_video_paths(), frames, size, per_video=8), fps)
    )
    assert len(report) >= 8
    real = evaluate_clips(report, config=config)
    assert real.passed, [v.reason for v in real.gates if not v.passed]
    for gate in config.gates:  # every real clip would pass on its own too
        sign = 1.0 if gate.higher_is_better else -1.0
        for row in real.videos:
            assert sign * (row["metrics"][gate.metric] - gate.threshold) >= 0, (row["name"], gate.metric)
    for set_name, clips in degenerate_sets(report[:templates], seed=2).items():
        result = evaluate_clips(through_h264(clips, fps), config=config)
        failed = {v.metric for v in result.gates if not v.passed}
        expected = {gate.metric for gate in config.gates if set_name in gate.catches}
        assert not result.passed and expected and expected <= failed, (set_name, failed, expected)


def test_tiny_gates_pass_real_clips_and_fail_each_degenerate_set() -> None:
    _check_preset("tiny", templates=4)


@pytest.mark.slow
def test_paper_gates_pass_real_clips_and_fail_each_degenerate_set() -> None:
    _check_preset("paper", templates=3)


@pytest.mark.parametrize("name", sorted(VideoEvalConfig.PRESETS))
def test_each_threshold_lies_between_real_and_degenerate(name: str) -> None:
    config = VideoEvalConfig.preset(name)
    caught = set()
    for gate in config.gates:
        c = gate.calibration
        low, high = sorted((c.real_worst, c.nearest_degenerate))
        assert low < gate.threshold < high and gate.threshold == pytest.approx((low + high) / 2, rel=1e-3)
        # The real clips lie on the passing side, the caught sets' means on the failing side.
        sign = 1.0 if gate.higher_is_better else -1.0
        assert (
            sign * (c.real_worst - gate.threshold) > 0 and sign * (c.real_report_worst - gate.threshold) > 0
        )
        for set_name in gate.catches:
            mean = c.degenerate[set_name]
            assert mean is None or sign * (mean - gate.threshold) < 0
        caught |= set(gate.catches)
    assert caught == set(DEGENERATE_SETS)


def test_calibration_places_the_widest_margin_threshold() -> None:
    config = VideoEvalConfig.preset("tiny", gates=(), feature_frames=3)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    photo = np.asarray(np.clip(np.cumsum(photo, axis=1) / np.arange(1, 161)[None, :, None], 0, 255), np.uint8)
    pans = [
        (f"pan@{s}", np.stack([photo[:64, s + 2 * t : s + 2 * t + 64] for t in range(5)]))
        for s in (0, 40, 80)
    ]
    real = evaluate_clips(pans, config=config)
    sets = {k: evaluate_clips(v, config=config) for k, v in degenerate_sets(pans, seed=0).items()}
    gates = {
        g.metric: g for g in calibrate_gates(real, real, sets, ["dynamic_degree", "temporal_flickering"])
    }
    dynamic = gates["dynamic_degree"]
    worst_real = min(row["metrics"]["dynamic_degree"] for row in real.videos)
    assert dynamic.calibration.real_worst == worst_real and dynamic.calibration.nearest_degenerate == 0.0
    assert dynamic.threshold == pytest.approx(worst_real / 2) and {"frozen", "constant"} <= set(
        dynamic.catches
    )
    assert "noise" in gates["temporal_flickering"].catches
    assert "frozen" not in gates["temporal_flickering"].catches  # a frozen frame does not flicker


def _report(values: list[float | None]) -> VideoEvaluationReport:
    rows = [{"name": f"clip{i}", "metrics": {"imaging_quality_brisque": v}} for i, v in enumerate(values)]
    return VideoEvaluationReport(preset="test", videos=rows, metrics={}, gates=[], passed=True)


def test_a_set_must_clear_every_real_clip_by_a_margin() -> None:
    real = _report([20.0, 35.0, 40.0])  # BRISQUE: lower is better, worst real clip 40
    degenerate = {
        "clear": _report([60.0, 80.0]),  # beyond 40 + 5 % of 40 on every clip
        "hair": _report([41.0, 90.0]),  # one clip only 1 level worse than the worst real clip
        "overlaps": _report([30.0, 99.0]),  # mean worse than every real clip, but one clip is not
        "undefined": _report([None, None]),  # flat frames: the gate fails them anyway
    }
    (gate,) = calibrate_gates(real, real, degenerate, ["imaging_quality_brisque"])
    assert gate.catches == ("clear", "undefined") and not gate.higher_is_better
    assert gate.threshold == pytest.approx(50.0) and gate.calibration.nearest_degenerate == 60.0
    assert gate.calibration.degenerate == {"clear": 70.0, "hair": 65.5, "overlaps": 64.5, "undefined": None}
    assert calibrate_gates(real, real, {"hair": degenerate["hair"]}, ["imaging_quality_brisque"]) == []

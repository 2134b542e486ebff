"""The calibrated gates pass real footage and fail every degenerate set.

Real clips are the report split (never used to place thresholds) of clips cut from the real videos
that ship in packages; degenerate sets are built over a few of them (noise, constant colour, frozen
frame, black/white flicker, brightness flicker).
"""

from __future__ import annotations

import numpy as np
import pytest

from curation.democorpus.photo_pool import real_video_paths
from evaluation.gate_calibration import (
    DEGENERATE_SETS,
    calibrate_gates,
    degenerate_sets,
    real_footage_clips,
    split_clips,
)
from evaluation.video_eval_config import PRESETS, VideoEvalConfig
from evaluation.video_metrics import evaluate_clips

CLIP_SHAPES = {"tiny": (9, 64), "paper": (33, 256)}  # what each profile generates


def _check_preset(name: str, templates: int) -> None:
    frames, size = CLIP_SHAPES[name]
    config = VideoEvalConfig.preset(name)
    _, report = split_clips(real_footage_clips(real_video_paths(), frames, size, per_video=8))
    assert len(report) >= 8
    real = evaluate_clips(report, config=config)
    assert real.passed, [v.reason for v in real.gates if not v.passed]
    for gate in config.gates:  # every real clip would pass on its own too
        sign = 1.0 if gate.higher_is_better else -1.0
        for row in real.videos:
            assert sign * (row["metrics"][gate.metric] - gate.threshold) >= 0, (row["name"], gate.metric)
    for set_name, clips in degenerate_sets(report[:templates], seed=2).items():
        result = evaluate_clips(clips, config=config)
        failed = {v.metric for v in result.gates if not v.passed}
        expected = {gate.metric for gate in config.gates if set_name in gate.catches}
        assert not result.passed and expected and expected <= failed, (set_name, failed, expected)


def test_tiny_gates_pass_real_clips_and_fail_each_degenerate_set() -> None:
    _check_preset("tiny", templates=4)


@pytest.mark.slow
def test_paper_gates_pass_real_clips_and_fail_each_degenerate_set() -> None:
    _check_preset("paper", templates=3)


@pytest.mark.parametrize("name", sorted(PRESETS))
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

"""Temporal flickering, motion smoothness and dynamic degree on videos with known answers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from evaluation.temporal_metrics import dynamic_degree, motion_smoothness, temporal_flickering

PHOTO = Path(skimage.__file__).parent / "data" / "astronaut.png"


def _photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)  # (512, 512, 3)


def _pan(offsets: list[int], size: int = 128) -> np.ndarray:
    """(T, size, size, 3): a window over the photo at horizontal offset `offsets[t]` px."""
    photo = _photo()
    return np.stack([photo[100 : 100 + size, 100 + x : 100 + x + size] for x in offsets])


def test_a_still_video_is_perfectly_steady_and_static() -> None:
    still = _pan([0] * 7)
    assert temporal_flickering(still) == 1.0
    assert motion_smoothness(still) == pytest.approx(1.0, abs=1e-6)
    assert dynamic_degree(still) == pytest.approx(0.0, abs=0.05)


def test_flickering_follows_the_vbench_formula() -> None:
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (6, 32, 40, 3), dtype=np.uint8)
    mae = np.mean([np.abs(video[t + 1].astype(float) - video[t]).mean() for t in range(5)])
    assert temporal_flickering(video) == pytest.approx((255 - mae) / 255, abs=1e-9)
    # Independent uniform frames: E|U − U'| = (256² − 1) / (3 · 256) ≈ 85.3 levels.
    noise = rng.integers(0, 256, (9, 128, 128, 3), dtype=np.uint8)
    assert temporal_flickering(noise) == pytest.approx(1 - 85.33 / 255, abs=0.003)
    black_white = np.zeros((6, 16, 16, 3), dtype=np.uint8)
    black_white[1::2] = 255
    assert temporal_flickering(black_white) == 0.0
    assert motion_smoothness(black_white) == 0.0


def test_dynamic_degree_measures_pixels_per_frame_at_256() -> None:
    pan = _pan([2 * t for t in range(9)])  # 2 px/frame at 128 px = 4 px/frame at 256 px
    assert dynamic_degree(pan) == pytest.approx(4.0, rel=0.15)
    assert dynamic_degree(_pan([4 * t for t in range(9)])) > 1.6 * dynamic_degree(pan)


def test_smoothness_prefers_steady_motion_to_jerky_motion() -> None:
    steady = _pan([3 * t for t in range(9)])
    jerky = _pan([0, 6, 6, 12, 12, 18, 18, 24, 24])  # the same path in stop-and-go steps
    assert motion_smoothness(steady) > 0.97
    assert motion_smoothness(steady) > motion_smoothness(jerky) + 0.03
    rng = np.random.default_rng(1)
    assert motion_smoothness(rng.integers(0, 256, (7, 64, 64, 3), dtype=np.uint8)) < 0.8


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8 RGB video"):
        temporal_flickering(np.zeros((4, 8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 3 frames"):
        motion_smoothness(np.zeros((2, 8, 8, 3), dtype=np.uint8))

"""MobileNetV2 consistency metrics and the Fréchet distance against hand computations."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
import torch
from scipy import linalg

from evaluation.feature_metrics import (
    background_consistency,
    frame_features,
    frechet_distance,
    subject_consistency,
    vbench_consistency,
)

DATA = Path(skimage.__file__).parent / "data"


def _rgb(name: str, size: int = 256) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(cv2.imread(str(DATA / name)), cv2.COLOR_BGR2RGB), (size, size))


def test_vbench_consistency_formula() -> None:
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # t=1: ½(cos(f0,f1) + cos(f0,f1)) = 1; t=2: ½(cos(f0,f2) + cos(f1,f2)) = 0 → mean ½.
    assert vbench_consistency(f) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2 frames"):
        vbench_consistency(f[:1])


def test_subject_and_background_consistency_see_their_own_regions() -> None:
    scene, others = _rgb("astronaut.png"), [_rgb("coffee.png"), _rgb("chelsea.png"), _rgb("rocket.jpg")]
    # The background stays; the central half (the "subject" region) shows a different photo each frame.
    frames = []
    for other in [scene, *others]:
        frame = scene.copy()
        frame[64:192, 64:192] = other[64:192, 64:192]
        frames.append(frame)
    video = np.stack(frames)
    features = frame_features(video)
    assert features.subject.shape == features.background.shape == features.whole.shape == (4, 1280)
    assert subject_consistency(features) < background_consistency(features) - 0.3
    still = frame_features(np.repeat(scene[None], 3, axis=0))
    assert subject_consistency(still) == pytest.approx(1.0, abs=1e-5)
    assert background_consistency(still) == pytest.approx(1.0, abs=1e-5)
    assert still.clip_feature().shape == (1280,)


def test_frechet_distance_matches_the_matrix_square_root_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6))
    b = rng.normal(0.5, 2.0, size=(30, 6)) @ rng.normal(size=(6, 6))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(
        cov_a + cov_b - 2 * np.real(linalg.sqrtm(cov_a @ cov_b))
    )
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # Shifting one set moves only the mean term: + ‖Δμ‖².
    assert frechet_distance(a, a + 3.0) == pytest.approx(6 * 9.0, rel=1e-9)
    # Fewer samples than dimensions (the usual case for 1280-d clip features) stays finite and ≥ 0.
    wide = frechet_distance(rng.normal(size=(5, 300)), rng.normal(size=(4, 300)))
    assert np.isfinite(wide) and wide > 0
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], b)

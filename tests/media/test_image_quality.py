"""BRISQUE and the aesthetic stand-in rank a clean photo above damaged copies of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage

from media.image_quality import HeuristicAestheticStandIn, _brisque_paths, brisque

PHOTO = Path(skimage.__file__).parent / "data" / "chelsea.png"


def test_quality_scores_rank_a_clean_photo_above_a_damaged_one() -> None:
    clean = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    # Out of focus and washed out (low contrast, lifted blacks): what the stand-in's terms measure.
    damaged = (0.4 * cv2.GaussianBlur(clean, (9, 9), 4).astype(np.float32) + 110).astype(np.uint8)
    rng = np.random.default_rng(0)
    noisy = np.clip(clean.astype(np.int16) + rng.integers(-40, 40, clean.shape), 0, 255).astype(np.uint8)
    assert brisque(clean) < brisque(noisy)
    scorer = HeuristicAestheticStandIn()
    assert "standin" in scorer.name
    assert 0.0 <= scorer.score([damaged]) < scorer.score([clean]) <= 10.0


def test_the_loaded_brisque_scorer_gives_the_scores_of_opencvs_one_shot_call() -> None:
    clean = cv2.cvtColor(cv2.imread(str(PHOTO)), cv2.COLOR_BGR2RGB)
    model, ranges = _brisque_paths()
    for frame in (clean, cv2.GaussianBlur(clean, (7, 7), 3), clean[50:250, 100:400]):
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        once = float(cv2.quality.QualityBRISQUE_compute(grey, model, ranges)[0])  # type: ignore[attr-defined]
        assert brisque(np.ascontiguousarray(frame)) == once

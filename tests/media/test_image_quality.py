"""BRISQUE and the aesthetic stand-in rank a clean photo above damaged copies of it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage

from media.image_quality import HeuristicAestheticStandIn, brisque

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

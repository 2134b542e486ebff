"""`videofoundry camera-motion` and `videofoundry caption`, run as a user runs them: the installed
console script in a subprocess, on a whole clip (no --end).

Regression: with no end frame both looped towards frame 2^40 and never returned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from media.video import write_video

REPO = Path(__file__).resolve().parents[3]
FRAMES = 48  # 2 s at 24 fps


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-second 480x270 clip: a window sliding right over a photo, so the camera pans right."""
    photo = cv2.cvtColor(
        cv2.imread(str(Path(skimage.__file__).parent / "data" / "coffee.png")), cv2.COLOR_BGR2RGB
    )
    scene = cv2.resize(photo, (960, 720))
    frames = [np.ascontiguousarray(scene[200:470, 10 + 4 * t : 490 + 4 * t]) for t in range(FRAMES)]
    path = tmp_path_factory.mktemp("clips") / "pan.mp4"
    assert write_video(path, frames, 24) == FRAMES
    return path


def _videofoundry(*args: str, timeout: float) -> dict:
    """Run the console script on this checkout; its printed JSON. Times out instead of hanging."""
    cli = Path(sys.executable).parent / "videofoundry"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_camera_motion_on_a_whole_clip_returns_with_a_label(pan_clip: Path) -> None:
    result = _videofoundry("camera-motion", str(pan_clip), timeout=90)
    assert result["label"] == "pan right"
    assert 0.5 < result["confidence"] <= 1.0
    assert result["features"]["n_frames"] == FRAMES  # the paper preset reads every frame, then stops


def test_caption_with_the_paper_preset_on_a_whole_clip_returns(pan_clip: Path) -> None:
    """The offline backend with the paper preset's camera settings and keyframes."""
    record = _videofoundry("caption", str(pan_clip), "--preset", "paper", timeout=180)
    assert record["status"] == "ok", record["error"]
    assert record["caption"]["camera_movement"] == "pan right"

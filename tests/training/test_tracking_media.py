"""Sample videos logged to MLflow go through the one writer: padded to even sizes, every frame kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from media.video import read_clip
from training.tracking import RunTracker


def test_log_video_writes_an_h264_artifact_padded_to_even_sizes(tmp_path: Path) -> None:
    tracker = RunTracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "samples", artifact_location=tmp_path / "art")
    frames = np.zeros((5, 33, 47, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(5)[:, None, None] * 50  # a red ramp over time
    tracker.log_video(frames, "ramp", fps=8)
    tracker.finish()
    [artifact] = list((tmp_path / "art").rglob("ramp.mp4"))
    assert artifact.parent.name == "samples"
    back = read_clip(artifact)
    assert back.shape == (5, 34, 48, 3)
    assert np.abs(back[:, :33, :47, 0].mean(axis=(1, 2)) - np.arange(5) * 50).max() < 4

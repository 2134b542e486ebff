"""A `Video` and its files: every frame and the metadata come back, the thumbnail is written.

The encoder itself (H.264, frame rates, determinism) is tested in tests/media/test_video.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serving import Video, read_mp4, thumbnail_path, write_mp4


def _ramp_video(frames: int = 13, height: int = 48, width: int = 64, fps: float = 24.0) -> Video:
    t = np.arange(frames)[:, None, None, None]
    y = np.arange(height)[None, :, None, None]
    x = np.arange(width)[None, None, :, None]
    pixels = (t * 12 + y * 2 + x + np.array([0, 60, 120])) % 256
    return Video(frames=pixels.astype(np.uint8), fps=fps, metadata={"model_version": "test v1", "seed": 3})


@pytest.mark.parametrize("fps", [24.0, 30000 / 1001])
def test_mp4_round_trip_keeps_frames_fps_and_metadata(tmp_path: Path, fps: float) -> None:
    video = _ramp_video(fps=fps)
    out = write_mp4(video, tmp_path / "clip.mp4")
    back = read_mp4(out)
    assert back.num_frames == 13 and (back.height, back.width) == (48, 64)
    assert back.fps == pytest.approx(fps, rel=1e-3)
    assert np.abs(back.frames.astype(int) - video.frames.astype(int)).mean() < 6.0  # lossy but close
    assert back.metadata == {"model_version": "test v1", "seed": 3}
    again = write_mp4(video, tmp_path / "again.mp4", thumbnail=False)
    assert again.read_bytes() == out.read_bytes()  # the one deterministic writer


def test_thumbnail_png_is_first_frame(tmp_path: Path) -> None:
    video = _ramp_video()
    out = write_mp4(video, tmp_path / "clip.mp4")
    thumb = thumbnail_path(out)
    assert thumb == tmp_path / "clip.png" and thumb.exists()
    image = np.asarray(Image.open(thumb).convert("RGB"))
    assert image.shape == (48, 64, 3) and np.array_equal(image, video.frames[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip.png"]  # no temp files left


def test_bad_outputs_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must end in \.mp4"):
        write_mp4(_ramp_video(), tmp_path / "clip.avi")
    with pytest.raises(ValueError, match="uint8"):
        Video(frames=np.zeros((2, 8, 8, 3), dtype=np.float32))

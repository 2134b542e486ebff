"""mp4 writing: H.264 at the video's fps, every frame present, metadata and thumbnail written."""

from __future__ import annotations

from pathlib import Path

import av
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


@pytest.mark.parametrize("fps", [24.0, 8.0, 30000 / 1001])
def test_mp4_is_h264_with_correct_fps_and_frames(tmp_path: Path, fps: float) -> None:
    video = _ramp_video(fps=fps)
    out = write_mp4(video, tmp_path / "clip.mp4")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == pytest.approx(fps, rel=1e-3)
        assert (stream.width, stream.height) == (64, 48)
    back = read_mp4(out)
    assert back.num_frames == 13
    assert back.duration == pytest.approx(13 / fps, rel=1e-3)
    assert np.abs(back.frames.astype(int) - video.frames.astype(int)).mean() < 6.0  # lossy but close
    assert back.metadata == {"model_version": "test v1", "seed": 3}


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

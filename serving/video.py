"""The generated `Video` and its files: an H.264 mp4 (`media.video`) at the video's fps and a PNG thumbnail.

Shape legend: F frames, H/W pixels; frames are uint8 RGB (F, H, W, 3).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Video:
    """A generated clip.

    Attributes:
        frames: (F, H, W, 3) uint8 RGB.
        fps: frames per second the clip is meant to play at (HunyuanVideo: 24).
        metadata: what produced it: `model_version` (shown to users), `model_reference`, prompt,
            negative prompt, seed, steps, shift, guidance, cfg_scale, mode (t2v / i2v), timings.
    """

    frames: np.ndarray
    fps: float = 24.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"Video frames must be (F, H, W, 3) uint8, got {self.frames.shape} {self.frames.dtype}"
            )
        if not self.fps > 0:
            raise ValueError(f"Video fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Seconds of playback."""
        return self.num_frames / self.fps

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", "unknown"))


def write_mp4(video: Video, path: str | Path, *, crf: int = 18, thumbnail: bool = True) -> Path:
    """Write `video` as H.264 (yuv420p) mp4 at `video.fps`, atomically; returns the mp4 path.

    Encoded by `media.video.write_video` (deterministic: the same video gives the same bytes). The
    metadata goes into the container's `comment` tag as JSON. With `thumbnail`, the first frame is
    also written as `<path stem>.png` beside it (see `thumbnail_path`). H and W must be even
    (yuv420p); the serving sizes are multiples of 16.
    """
    from media.video import write_video  # lazily: generating needs no ffmpeg, only writing does

    out = Path(path)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: the output file must end in .mp4")
    if video.height % 2 or video.width % 2:
        raise ValueError(f"H.264 (yuv420p) needs even sizes, got {video.height}x{video.width}")
    comment = json.dumps(video.metadata, default=str)
    write_video(out, video.frames, video.fps, crf=crf, metadata={"comment": comment})
    if thumbnail:
        write_thumbnail(video, thumbnail_path(out))
    return out


def thumbnail_path(mp4_path: str | Path) -> Path:
    """Where `write_mp4` puts the thumbnail: the mp4's path with `.png`."""
    return Path(mp4_path).with_suffix(".png")


def write_thumbnail(video: Video, path: str | Path, max_side: int = 320) -> Path:
    """The first frame as PNG, downscaled so its longer side is at most `max_side`; atomic."""
    out = Path(path)
    image = Image.fromarray(video.frames[0])
    image.thumbnail((max_side, max_side))
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".png")
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; thumbnails are served to browsers
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def read_mp4(path: str | Path) -> Video:
    """Decode an mp4 back into a `Video` (frames, fps from the stream, metadata from `comment`)."""
    from media.video import VideoReader

    with VideoReader(path) as reader:
        frames = reader.read()
        fps = reader.fps or 24.0
        comment = reader.metadata.get("comment", "{}")
    try:
        metadata = json.loads(comment)
    except json.JSONDecodeError:
        metadata = {"comment": comment}
    return Video(frames=frames, fps=fps, metadata=metadata)

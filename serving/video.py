"""The generated `Video` and its files: an H.264 mp4 (PyAV) at the video's fps and a PNG thumbnail.

Shape legend: F frames, H/W pixels; frames are uint8 RGB (F, H, W, 3).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
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


def _fps_fraction(fps: float) -> Fraction:
    # H.264 time bases want a rational; 23.976 etc. become 24000/1001-style fractions.
    return Fraction(fps).limit_denominator(1001)


def write_mp4(video: Video, path: str | Path, *, crf: int = 18, thumbnail: bool = True) -> Path:
    """Write `video` as H.264 (yuv420p) mp4 at `video.fps`, atomically; returns the mp4 path.

    The metadata goes into the container's `comment` tag as JSON. With `thumbnail`, the first
    frame is also written as `<path stem>.png` beside it (see `thumbnail_path`). H and W must be
    even (yuv420p); the serving sizes are multiples of 16.
    """
    import av  # lazily: generating needs no ffmpeg, only writing does

    out = Path(path)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: the output file must end in .mp4")
    if video.height % 2 or video.width % 2:
        raise ValueError(f"H.264 (yuv420p) needs even sizes, got {video.height}x{video.width}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            container.metadata["comment"] = json.dumps(video.metadata, default=str)
            stream = container.add_stream("libx264", rate=_fps_fraction(video.fps))
            stream.width, stream.height = video.width, video.height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            for frame in video.frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
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
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def read_mp4(path: str | Path) -> Video:
    """Decode an mp4 back into a `Video` (frames, fps from the stream, metadata from `comment`)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.base_rate or 24)
        frames = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(stream)])
        comment = container.metadata.get("comment", "{}")
    try:
        metadata = json.loads(comment)
    except json.JSONDecodeError:
        metadata = {"comment": comment}
    return Video(frames=frames, fps=fps, metadata=metadata)

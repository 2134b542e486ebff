"""Probing and decoding raw videos for curation, with a specific error for every bad input.

`probe_video` opens a file and checks it is a usable video (else `BadVideoError` with the stage and
reason that go into the quarantine table). `decode_for_analysis` decodes it once into frames at
the analysis height (RGB, all frames) plus sparse full-resolution frames for OCR and quality.
Rotation metadata is applied (frames are what a player shows); variable frame rate is kept as
real timestamps per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curation.config import ProbeConfig
from media.video import VideoReader, VideoReadError, fit_height


class BadVideoError(ValueError):
    """A raw file that cannot be curated; `stage` and `reason` go to the quarantine table."""

    def __init__(self, path: Path | str, stage: str, reason: str) -> None:
        super().__init__(f"{path}: {reason} (stage {stage})")
        self.path = str(path)
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video stream (sizes after rotation)."""

    path: str
    width: int
    height: int
    fps: float  # average frame rate (frames / second of the stream)
    rotation: int  # degrees the player rotates by (0, 90, 180, 270)


def probe_video(path: Path, config: ProbeConfig) -> VideoInfo:
    """Open `path` and check it is a usable video; raise `BadVideoError(stage='probe')` if not."""
    path = Path(path)
    if not path.is_file():
        raise BadVideoError(path, "probe", "file does not exist")
    if path.stat().st_size == 0:
        raise BadVideoError(path, "probe", "empty file (0 bytes)")
    try:
        with VideoReader(path) as reader:
            (width, height), fps = reader.coded_size, reader.fps
    except VideoReadError as error:
        raise BadVideoError(path, "probe", error.reason) from error
    if width <= 0 or height <= 0:
        raise BadVideoError(path, "probe", "video stream has no frame size")
    if min(width, height) < config.min_short_side:
        raise BadVideoError(
            path,
            "probe",
            f"frame size {width}x{height} below the minimum short side {config.min_short_side} px",
        )
    if width * height > config.max_frame_pixels:
        raise BadVideoError(
            path, "probe", f"frame size {width}x{height} above the cap of {config.max_frame_pixels} pixels"
        )
    if fps <= 0:
        raise BadVideoError(path, "probe", "no frame rate in the video stream")
    return VideoInfo(str(path), width, height, fps, 0)


@dataclass
class DecodedVideo:
    """A video decoded for analysis.

    `small`: (T, h, w, 3) uint8 RGB at the analysis height (w keeps the aspect, even).
    `times`: (T,) float64 presentation time of each frame, seconds from the first frame.
    `full`: frame index → full-resolution RGB frame (H, W, 3), every `full_every_s` seconds.
    """

    info: VideoInfo
    small: np.ndarray
    times: np.ndarray
    full: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return int(self.small.shape[0])

    @property
    def width(self) -> int:
        """Display width in pixels (after rotation)."""
        return self.info.width

    @property
    def height(self) -> int:
        return self.info.height


def decode_for_analysis(
    info: VideoInfo, analysis_height: int, full_every_s: float, max_frames: int
) -> DecodedVideo:
    """Decode every frame of `info.path` once (see `DecodedVideo`); `BadVideoError(stage='decode')`.

    Frames are scaled to the analysis size inside the decode loop (`media.video`), which is cheaper
    than converting full frames to numpy and resizing them.
    """
    small: list[np.ndarray] = []
    times: list[float] = []
    full: dict[int, np.ndarray] = {}
    next_full_time = 0.0
    rotation = 0
    try:
        with VideoReader(info.path) as reader:
            for frame in reader.frames(0, None):
                if frame.index >= max_frames:
                    break
                rotation = frame.rotation
                small.append(frame.array(fit_height(frame.size, analysis_height)))
                times.append(frame.time)
                if frame.time >= next_full_time - 1e-6:
                    full[frame.index] = frame.array()
                    next_full_time += full_every_s
    except VideoReadError as error:
        if not small:
            raise BadVideoError(info.path, "decode", f"no frame could be decoded ({error.reason})") from error
        # A damaged tail: keep what decoded, the clips stage sees the shorter video.
    if rotation in (90, 270):
        info = VideoInfo(info.path, info.height, info.width, info.fps, rotation)
    elif rotation:
        info = VideoInfo(info.path, info.width, info.height, info.fps, rotation)
    return DecodedVideo(
        info=info, small=np.stack(small), times=np.asarray(times, dtype=np.float64), full=full
    )

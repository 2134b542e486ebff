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

import av
import numpy as np

from curation.config import ProbeConfig


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
    frame_count_hint: int  # from the container; 0 when unknown


def probe_video(path: Path, config: ProbeConfig) -> VideoInfo:
    """Open `path` and check it is a usable video; raise `BadVideoError(stage='probe')` if not."""
    path = Path(path)
    if not path.is_file():
        raise BadVideoError(path, "probe", "file does not exist")
    if path.stat().st_size == 0:
        raise BadVideoError(path, "probe", "empty file (0 bytes)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise BadVideoError(
            path, "probe", f"not a readable media file ({type(error).__name__}: {error})"
        ) from error
    with container:
        if not container.streams.video:
            kinds: list[str] = sorted({str(s.type) for s in container.streams}) or ["none"]
            raise BadVideoError(path, "probe", f"no video stream (streams: {', '.join(kinds)})")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        frames_hint = int(stream.frames or 0)
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
    return VideoInfo(str(path), width, height, fps, 0, frames_hint)


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


def _rotate(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate an (H, W, 3) frame counter-clockwise by `rotation` degrees (a multiple of 90)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, k=turns)) if turns else frame


def decode_for_analysis(
    info: VideoInfo, analysis_height: int, full_every_s: float, max_frames: int
) -> DecodedVideo:
    """Decode every frame of `info.path` once (see `DecodedVideo`); `BadVideoError(stage='decode')`.

    Scaling to the analysis size is done by FFmpeg's swscale inside PyAV (`reformat`), which is
    cheaper than converting full frames to numpy and resizing them.
    """
    small: list[np.ndarray] = []
    times: list[float] = []
    full: dict[int, np.ndarray] = {}
    next_full_time = 0.0
    rotation = 0
    try:
        with av.open(info.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if len(small) == 0:
                    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
                if len(small) >= max_frames:
                    break
                rotated = rotation in (90, 270)
                shown_w, shown_h = (frame.height, frame.width) if rotated else (frame.width, frame.height)
                small_w = max(2, round(shown_w * analysis_height / shown_h / 2) * 2)
                # Scale before rotating: the decoder's frame is the unrotated picture.
                scaled = frame.reformat(
                    width=analysis_height if rotated else small_w,
                    height=small_w if rotated else analysis_height,
                    format="rgb24",
                    interpolation="AREA",  # swscale's default (bicubic) is slower and aliases more
                ).to_ndarray()
                small.append(_rotate(scaled, rotation))
                time = float(frame.time) if frame.time is not None else len(small) / info.fps
                times.append(time)
                if time - (times[0] if times else 0.0) >= next_full_time - 1e-6:
                    full[len(small) - 1] = _rotate(frame.to_ndarray(format="rgb24"), rotation)
                    next_full_time += full_every_s
    except av.error.FFmpegError as error:
        if not small:
            raise BadVideoError(info.path, "decode", f"no frame could be decoded ({error})") from error
        # A damaged tail: keep what decoded, the clips stage sees the shorter video.
    if not small:
        raise BadVideoError(info.path, "decode", "the video stream holds no decodable frame")
    if rotation in (90, 270):
        info = VideoInfo(info.path, info.height, info.width, info.fps, rotation, info.frame_count_hint)
    elif rotation:
        info = VideoInfo(info.path, info.width, info.height, info.fps, rotation, info.frame_count_hint)
    stamps = np.asarray(times, dtype=np.float64)
    return DecodedVideo(info=info, small=np.stack(small), times=stamps - stamps[0], full=full)

"""Probing and decoding raw videos for curation, with a specific error for every bad input.

`probe_video` opens a file and checks it is a usable video (else `BadVideoError` with the stage and
reason that go into the quarantine table). `decode_for_analysis` decodes it once into frames at
the analysis height (RGB, all frames up to the frame cap, or one frame range through the seeking
reader; never upscaled), and hands each decoded
frame to an optional callback (the signals stage keeps the few full-resolution frames it needs there).
Rotation metadata is applied (frames are what a player shows); variable frame rate is kept as
real timestamps per frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.config import ProbeConfig
from media.video import DecodedFrame, VideoReader, VideoReadError, fit_height

_log = logging.getLogger(__name__)

# FFmpeg demuxers of single still images (`<codec>_pipe` is the family of the others).
_IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})


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
    """Open `path` and check it is a usable video; raise `BadVideoError(stage='probe')` if not.

    A still image under a video name (a JPEG called `.mp4`) is "not a video", named by its format.
    """
    path = Path(path)
    if not path.is_file():
        raise BadVideoError(path, "probe", "file does not exist")
    if path.stat().st_size == 0:
        raise BadVideoError(path, "probe", "empty file (0 bytes)")
    try:
        with VideoReader(path) as reader:
            (width, height), fps = reader.coded_size, reader.fps
            demuxer = reader.container_format
    except VideoReadError as error:
        raise BadVideoError(path, "probe", error.reason) from error
    except OSError as error:  # e.g. permission denied since ingest listed it
        raise BadVideoError(path, "probe", f"unreadable: {error.strerror or error}") from error
    if demuxer in _IMAGE_DEMUXERS or demuxer.endswith("_pipe"):
        raise BadVideoError(path, "probe", f"not a video: a still image ({demuxer.removesuffix('_pipe')})")
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

    `small`: (T, h, w, 3) uint8 RGB at the analysis height (w keeps the aspect, even), or at the
    video's own size when it has fewer rows (such a video fails every tier's `min_short_side`).
    `small[i]` is frame `first_frame + i` of the file (0 unless a frame range was decoded).
    `times`: (T,) float64 presentation time of each frame, seconds from the video's first frame.
    `source_frames`: frames of the whole stream (from its packets; None when they do not tell; for
    a frame range, the stream's count from its packets, or None).
    `truncated`: the stream is longer than the frame cap, so only its first T frames were decoded.
    """

    info: VideoInfo
    small: np.ndarray
    times: np.ndarray
    source_frames: int | None = None
    truncated: bool = False
    first_frame: int = 0

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


FrameCallback = Callable[[DecodedFrame, np.ndarray], None]
"""Called after each decoded frame with the frame (full resolution, not yet converted) and the
analysis-size frames decoded so far (a view, valid during the call only)."""


def decode_for_analysis(
    info: VideoInfo,
    analysis_height: int,
    *,
    max_frames: int,
    on_frame: FrameCallback | None = None,
    frames_range: tuple[int, int] | None = None,
) -> DecodedVideo:
    """Decode the first `max_frames` frames of `info.path` once (see `DecodedVideo`).

    `frames_range` (start, end): decode frames [start, min(end, max_frames)) only, seeking to the
    keyframe before `start` (`media.video.VideoReader.frames`), for a stage that needs some clips;
    frame indices (`DecodedFrame.index`, the frame cap) stay the file's own.

    Frames are scaled inside the decode loop (`media.video`) to `analysis_height` rows, or kept at
    their own height when they have fewer (never upscaled: it adds no information, and it made a
    64×64 video cost 16× its size). They are written into one preallocated array, so memory is at
    most `max_frames` analysis-size frames whatever the duration; no full-resolution frame is kept
    (`on_frame` sees each one while it is decoded).
    A longer stream is cut at the cap: the result says `truncated` (and a warning is logged),
    with the stream's own frame count when its packets tell it.
    A stream that fails to decode part-way raises `BadVideoError(stage='decode')` naming the
    frame: its tail is lost and frames near the damage may be concealed, so it is not curated.
    """
    start, end = frames_range if frames_range is not None else (0, None)
    end = min(end, max_frames) if end is not None else None
    if start >= max_frames or (end is not None and end <= start):
        raise ValueError(f"frames_range {frames_range} is empty under the max_frames cap of {max_frames}")
    frames = _FrameBuffer((max_frames if end is None else end) - start)
    times: list[float] = []
    rotation = 0
    truncated = False
    try:
        with VideoReader(info.path) as reader:
            stream_frames = reader.frame_count if reader.seekable else None
            if end is not None and stream_frames is not None and start < stream_frames:
                end = min(end, stream_frames)  # a shorter file: its clips past the end are the caller's
            expected = None if stream_frames is None else min(stream_frames, end or stream_frames) - start
            for frame in reader.frames(start, end):
                if frame.index >= max_frames:
                    truncated = True
                    break
                rotation = frame.rotation
                width, height = frame.size
                size = (
                    fit_height(frame.size, analysis_height) if height > analysis_height else (width, height)
                )
                frames.append(frame.array(size), expected)
                times.append(frame.time)
                if on_frame is not None:
                    on_frame(frame, frames.array())
    except VideoReadError as error:
        at = start + len(times)
        raise BadVideoError(info.path, "decode", f"corrupt stream at frame {at} ({error.reason})") from error
    except OSError as error:
        raise BadVideoError(info.path, "decode", f"unreadable: {error.strerror or error}") from error
    if not times:
        raise BadVideoError(info.path, "decode", "no frame could be decoded")
    if rotation in (90, 270):
        info = VideoInfo(info.path, info.height, info.width, info.fps, rotation)
    elif rotation:
        info = VideoInfo(info.path, info.width, info.height, info.fps, rotation)
    if truncated:
        total = "an unknown number of" if expected is None else str(expected)
        _log.warning(
            "%s: only the first %d of %s frames are curated (the max_frames cap)",
            info.path,
            max_frames,
            total,
        )
    return DecodedVideo(
        info=info,
        small=frames.array(),
        times=np.asarray(times, dtype=np.float64),
        source_frames=stream_frames if truncated or frames_range is not None else len(times),
        truncated=truncated,
        first_frame=start,
    )


class _FrameBuffer:
    """Frames appended into one (T, h, w, 3) array, sized once from the expected count when known.

    Without a known count it doubles (at most `max_frames`), copying O(log T) times instead of
    holding a list of frames plus their stacked copy.
    """

    def __init__(self, max_frames: int) -> None:
        self.max_frames = max_frames
        self.count = 0
        self._data: np.ndarray | None = None

    def append(self, frame: np.ndarray, expected: int | None) -> None:
        if self._data is None:
            capacity = min(self.max_frames, expected if expected else 256)
            self._data = np.empty((max(1, capacity), *frame.shape), dtype=frame.dtype)
        elif self.count == len(self._data):
            grown = np.empty((min(self.max_frames, 2 * self.count), *frame.shape), dtype=frame.dtype)
            grown[: self.count] = self._data
            self._data = grown
        self._data[self.count] = frame
        self.count += 1

    def array(self) -> np.ndarray:
        assert self._data is not None, "array() of an empty buffer"
        return self._data[: self.count]

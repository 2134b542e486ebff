"""Keyframes of a clip: `n` evenly spaced frames of a frame range, RGB uint8 (H, W, 3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from media.video import VideoReader, VideoReadError


class ClipReadError(ValueError):
    """A clip's video cannot be opened or has no frames in the requested range."""


@dataclass(frozen=True)
class ClipInput:
    """One clip to caption.

    `video` is the file holding the clip's frames, `[start_frame, end_frame)` the range inside it
    (end None: to the end). `source_file` / `source_start_frame` name where the clip came from in
    its raw video, which the demo-corpus ground truth needs to find the clip's shot.
    """

    clip_id: str
    video: Path
    start_frame: int = 0
    end_frame: int | None = None
    source_file: str | None = None
    source_start_frame: int | None = None
    source_end_frame: int | None = None


@dataclass(frozen=True)
class VideoInfo:
    """Size and timing of a clip (the frame range, not the whole file)."""

    width: int
    height: int
    fps: float
    n_frames: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0


def read_keyframes(clip: ClipInput, n: int) -> tuple[list[np.ndarray], VideoInfo]:
    """`n` evenly spaced RGB keyframes of the clip's range (fewer if the clip is shorter), and its info.

    One decode of the range (seeking to its start); only the chosen frames are converted and kept.
    """
    try:
        with VideoReader(clip.video) as reader:
            end = clip.end_frame if clip.end_frame is not None else reader.frame_count
            count = end - clip.start_frame
            if count <= 0:
                raise ClipReadError(
                    f"clip {clip.clip_id}: no frames in [{clip.start_frame}, {clip.end_frame}) of {clip.video}"
                )
            wanted = {clip.start_frame + int(i) for i in np.linspace(0, count - 1, min(n, count)).round()}
            frames = [
                decoded.array()
                for decoded in reader.frames(clip.start_frame, max(wanted) + 1)
                if decoded.index in wanted
            ]
            fps = reader.fps or 25.0
    except VideoReadError as error:
        raise ClipReadError(f"clip {clip.clip_id}: {error}") from error
    width, height = frames[0].shape[1], frames[0].shape[0]
    return frames, VideoInfo(width=width, height=height, fps=fps, n_frames=count)

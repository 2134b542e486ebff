"""Keyframes of a clip: `n` evenly spaced frames of a frame range, RGB uint8 (H, W, 3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


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

    Two decoding passes over the range: one counts frames, one keeps the chosen ones, so memory
    holds only `n` frames.
    """
    path = Path(clip.video)
    if not path.is_file():
        raise ClipReadError(f"clip {clip.clip_id}: video {path} does not exist")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 25.0
            count = 0
            for index, _ in enumerate(container.decode(stream)):
                if clip.end_frame is not None and index >= clip.end_frame:
                    break
                if index >= clip.start_frame:
                    count += 1
        if count == 0:
            raise ClipReadError(
                f"clip {clip.clip_id}: no frames in [{clip.start_frame}, {clip.end_frame}) of {path}"
            )
        wanted = {clip.start_frame + int(i) for i in np.linspace(0, count - 1, min(n, count)).round()}
        frames: list[np.ndarray] = []
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index > max(wanted):
                    break
                if index in wanted:
                    frames.append(frame.to_ndarray(format="rgb24"))
    except av.FFmpegError as error:
        raise ClipReadError(f"clip {clip.clip_id}: cannot decode {path} ({error})") from error
    height, width = frames[0].shape[:2]
    return frames, VideoInfo(width=width, height=height, fps=fps, n_frames=count)

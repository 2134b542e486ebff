"""Writing and reading video files with PyAV (H.264 in MP4), atomically.

Frames are uint8 RGB arrays of shape (H, W, 3). Writes go to a temporary file in the target
folder and are moved into place with `os.replace`, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class VideoWriteError(RuntimeError):
    """Frames could not be encoded into the requested file."""


def _fps_fraction(fps: float) -> Fraction:
    """An exact frame-rate fraction: 29.97 → 30000/1001, integers stay integers."""
    if abs(fps - round(fps)) < 1e-6:
        return Fraction(round(fps), 1)
    if abs(fps * 1.001 - round(fps * 1.001)) < 1e-3:
        return Fraction(round(fps * 1.001) * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def write_video(
    path: Path,
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int = 20,
    preset: str = "veryfast",
    pts: Iterable[int] | None = None,
    time_base: Fraction | None = None,
) -> int:
    """Encode RGB frames (H, W, 3 uint8, H and W even) as H.264/yuv420p MP4 at `path`.

    `pts` (in `time_base` units) gives explicit timestamps for variable-frame-rate output;
    by default frame i is shown at i / fps. Returns the number of frames written.
    Deterministic: the same frames give the same bytes. x264's macroblock-tree rate control is off
    (`mbtree=0`): with it on, libx264 (FFmpeg 8 via PyAV 18) encoded identical frames to different
    bytes on repeated calls in one process, even single-threaded (decoded frames up to 31 levels
    apart), which made corpora and everything trained on them vary from run to run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix or ".mp4", dir=path.parent)
    os.close(handle)
    count = 0
    try:
        with av.open(tmp_name, mode="w", format="mp4") as container:
            rate = _fps_fraction(fps)
            stream = container.add_stream("libx264", rate=rate)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "x264-params": "mbtree=0"}
            stream.codec_context.thread_count = 1
            if time_base is not None:
                stream.codec_context.time_base = time_base
                stream.time_base = time_base
            pts_iter = iter(pts) if pts is not None else None
            for frame_array in frames:
                if frame_array.dtype != np.uint8 or frame_array.ndim != 3 or frame_array.shape[2] != 3:
                    raise VideoWriteError(f"{path}: frames must be uint8 (H, W, 3), got {frame_array.shape}")
                if count == 0:
                    height, width = frame_array.shape[:2]
                    if height % 2 or width % 2:
                        raise VideoWriteError(f"{path}: H.264 yuv420p needs even sizes, got {width}x{height}")
                    stream.width, stream.height = width, height
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_array), format="rgb24")
                if pts_iter is not None:
                    frame.pts = next(pts_iter)
                    frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
                count += 1
            for packet in stream.encode():
                container.mux(packet)
        if count == 0:
            raise VideoWriteError(f"{path}: no frames to write")
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; corpus files are shared read-only
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return count


def iter_frames(path: Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode every video frame of `path` as RGB (H, W, 3) uint8, in presentation order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if max_frames is not None and index >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def read_frames(path: Path) -> np.ndarray:
    """All frames of `path` as one array (T, H, W, 3) uint8; for short videos only."""
    return np.stack(list(iter_frames(path)))

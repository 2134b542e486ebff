"""Reading clips of videos and writing H.264 video with PyAV: the platform's one reader and one writer.

Frames are uint8 arrays, RGB (H, W, 3) or grey (H, W), as a player shows them (display rotation
applied). Frame index i is the i-th frame a decoder outputs when it decodes the file from its start,
in presentation order: the numbering curation's clip boundaries use (PySceneDetect counts frames
the same way), whatever the frame rate (variable rates included) and the first timestamp.

Reading frames [start, end) seeks to the keyframe before `start` and decodes forward; it decodes
from frame 0 only for files whose packets cannot be mapped to frame indices reliably (see
`_scan_packets` for when and why). Frames are resized inside the decode loop, so full-size frames
are never held.

Writing goes to a temporary file in the target folder that `os.replace` moves into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import ClassVar, Literal

import av
import numpy as np

PixelFormat = Literal["rgb24", "gray", "yuv420p"]
Size = tuple[int, int]  # (width, height) in pixels, as shown (after rotation)


class VideoReadError(ValueError):
    """A video cannot be opened or decoded, or has no frames at the requested indices.

    `path` names the file, `reason` says what is wrong with it (the message is both).
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoWriteError(ValueError):
    """Frames could not be encoded into the requested file."""


# ---- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FrameIndex:
    """Where each frame of a file lies, from its packets (demuxed, not decoded).

    `pts[i]` is the presentation timestamp of frame i; `keyframes` are (pts, seek timestamp) of the
    packets a decode can start from, in pts order. `unseekable` says why frame indices cannot be
    mapped to seek positions for this file (None when they can).
    """

    pts: tuple[int, ...] = ()
    keyframes: tuple[tuple[int, int], ...] = ()
    unseekable: str | None = None
    position: dict[int, int] = field(default_factory=dict)


def _scan_packets(container: av.container.InputContainer) -> _FrameIndex:
    """Demux every video packet of `container` (no decoding) into a `_FrameIndex`.

    Seeking needs packet timestamps that name frames one to one, and a full decode that outputs one
    frame per packet from the first packet on. Files that break this decode from frame 0 instead:
    packets without timestamps (raw elementary streams, some AVI/MPEG-PS muxes), duplicate
    timestamps, corrupt packets, or a stream that does not start on a keyframe or shows frames
    before its first keyframe (an open GOP): there a full decode drops or conceals frames the packet
    list counts, so counting packets would shift every index after them.
    """
    stream = container.streams.video[0]
    packets = [p for p in container.demux(stream) if p.size]  # size 0: the end-of-stream marker
    # Packets an edit list marks as discarded are decoded as references but never output.
    output = [p for p in packets if not p.is_discard]
    shown = [p.pts for p in output if p.pts is not None]
    first = packets[0] if packets else None
    reason = None
    if first is None or first.pts is None or len(shown) < len(output) or not shown:
        reason = "packets without presentation timestamps"
    elif len(set(shown)) != len(shown):
        reason = "packets with duplicate timestamps"
    elif any(p.is_corrupt for p in packets):
        reason = "corrupt packets"
    elif not first.is_keyframe:
        reason = "the stream does not start on a keyframe"
    elif min(shown) < first.pts:
        reason = "frames shown before the first keyframe (open GOP)"
    if reason is not None:
        return _FrameIndex(unseekable=reason)
    order = tuple(sorted(shown))
    keyframes = sorted(
        (p.pts, p.dts if p.dts is not None else p.pts) for p in packets if p.is_keyframe and p.pts is not None
    )
    return _FrameIndex(
        pts=order, keyframes=tuple(keyframes), position={pts: i for i, pts in enumerate(order)}
    )


_IndexKey = tuple[str, int, int]  # (resolved path, size, mtime_ns): a changed file is scanned again
_INDEX_CACHE: OrderedDict[_IndexKey, _FrameIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 64  # a process reads many clips of a few raw videos: scan each file once
_INDEX_LOCK = threading.Lock()


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate (H, W[, 3]) counter-clockwise by `rotation` degrees (a multiple of 90)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


@dataclass(frozen=True)
class DecodedFrame:
    """Frame `index` of a video, still in the decoder's format until `array` converts it.

    `time` is seconds after the video's first frame (from timestamps, so variable rates are exact).
    """

    index: int
    time: float
    frame: av.VideoFrame
    rotation: int  # degrees a player rotates the decoded picture by (0, 90, 180, 270)

    @property
    def size(self) -> Size:
        """(width, height) as shown."""
        turned = self.rotation in (90, 270)
        return (self.frame.height, self.frame.width) if turned else (self.frame.width, self.frame.height)

    def array(self, size: Size | None = None, pixel_format: PixelFormat = "rgb24") -> np.ndarray:
        """uint8 (H, W, 3) RGB, (H, W) grey or (H·3/2, W) I420 planes, scaled to `size` (width, height).

        Scaling uses an area filter. I420 planes are the decoder's own samples (no colour conversion)
        and cannot be rotated: a rotated video refuses them.
        """
        turned = self.rotation in (90, 270)
        if pixel_format == "yuv420p" and self.rotation:
            raise ValueError(f"frame {self.index}: I420 planes of a video rotated by {self.rotation}°")
        if size is None or tuple(size) == self.size:
            image = self.frame.to_ndarray(format=pixel_format)
        else:
            width, height = size
            # The decoded picture is unrotated: scale it to the rotated target, then rotate.
            image = self.frame.reformat(
                width=height if turned else width,
                height=width if turned else height,
                format=pixel_format,
                interpolation="AREA",  # swscale's default (bilinear) aliases when shrinking
            ).to_ndarray()
        return _rotate(image, self.rotation)


class _SeekMismatch(Exception):
    """Frames after a seek did not line up with the packet index; the read goes on from frame 0."""


class VideoReader:
    """One video file opened for reading frame ranges (see the module docstring for frame indices).

    `decoded_frames` counts the frames the decoder has output so far, which shows what a read cost;
    the class attribute `decoded_frames_total` counts them over every reader of this process (what
    a whole stage cost).
    Use as a context manager, or call `close`.
    """

    decoded_frames_total: ClassVar[int] = 0

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.decoded_frames = 0
        self._frame_count: int | None = None
        self._first_frame: DecodedFrame | None = None
        self._container = self._open()
        self._stream = self._container.streams.video[0]

    def _open(self) -> av.container.InputContainer:
        if not self.path.is_file():
            raise VideoReadError(self.path, "no such video file")
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as error:
            raise VideoReadError(
                self.path, f"not a readable media file ({type(error).__name__}: {error})"
            ) from error
        if not container.streams.video:
            kinds = sorted({str(s.type) for s in container.streams}) or ["none"]
            container.close()
            raise VideoReadError(self.path, f"no video stream (streams: {', '.join(kinds)})")
        container.streams.video[0].thread_type = "AUTO"
        return container

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def fps(self) -> float:
        """The stream's average frame rate (0.0 when the container states none)."""
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        return float(rate) if rate else 0.0

    @property
    def container_format(self) -> str:
        """FFmpeg's name of the demuxer that opened the file (e.g. `mov,mp4,…`, `jpeg_pipe`)."""
        return str(self._container.format.name)

    @property
    def metadata(self) -> dict[str, str]:
        """The container's tags (e.g. `comment`)."""
        return dict(self._container.metadata)

    @property
    def coded_size(self) -> Size:
        """(width, height) the stream stores, before display rotation (read without decoding)."""
        context = self._stream.codec_context
        return context.width, context.height

    @property
    def size(self) -> Size:
        """(width, height) of the frames as shown (decodes the first frame to learn the rotation)."""
        if self._first_frame is None:
            self._first_frame = next(self.frames(0, 1))
        return self._first_frame.size

    @property
    def frame_count(self) -> int:
        """Frames a full decode outputs: counted from packets, or by decoding where that is unreliable."""
        index = self._index()
        if index.unseekable is None:
            return len(index.pts)
        if self._frame_count is None:
            self._frame_count = sum(1 for _ in self._forward(0, None, check_end=False))
        return self._frame_count

    @property
    def seekable(self) -> bool:
        """Whether reads start at the keyframe before their first frame (else from frame 0)."""
        return self._index().unseekable is None

    def _index_key(self) -> _IndexKey:
        stat = self.path.stat()
        return str(self.path.resolve()), stat.st_size, stat.st_mtime_ns

    def _index(self) -> _FrameIndex:
        key = self._index_key()
        with _INDEX_LOCK:
            index = _INDEX_CACHE.get(key)
            if index is not None:
                _INDEX_CACHE.move_to_end(key)
                return index
        with av.open(str(self.path)) as container:
            try:
                index = _scan_packets(container)
            except av.FFmpegError as error:
                index = _FrameIndex(unseekable=f"demuxing failed ({error})")
        self._remember(key, index)
        return index

    @staticmethod
    def _remember(key: _IndexKey, index: _FrameIndex) -> None:
        with _INDEX_LOCK:
            _INDEX_CACHE[key] = index
            if len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
                _INDEX_CACHE.popitem(last=False)

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[DecodedFrame]:
        """Decoded frames start, start+1, …, end−1 (end None: to the last frame).

        Raises `VideoReadError` for an empty or negative range, a range past the last frame, or a
        file that cannot be decoded.
        """
        if start < 0 or (end is not None and end <= start):
            raise VideoReadError(self.path, f"frame range [{start}, {end}) is empty or negative")
        index = self._index() if start > 0 else None
        if index is not None and index.unseekable is None:
            count = len(index.pts)
            if start >= count or (end is not None and end > count):
                raise VideoReadError(self.path, f"frame range [{start}, {end}) is past its {count} frames")
            try:
                for decoded in self._seeked(index, start, end):
                    yield decoded
                    start = decoded.index + 1
                return
            except _SeekMismatch as mismatch:
                # The packet index did not describe this file's decode: later reads of it decode
                # from frame 0, which keeps indices right.
                self._remember(self._index_key(), _FrameIndex(unseekable=str(mismatch)))
        yield from self._forward(start, end)

    def read(
        self,
        start: int = 0,
        end: int | None = None,
        size: Size | None = None,
        pixel_format: PixelFormat = "rgb24",
    ) -> np.ndarray:
        """Frames [start, end) as one uint8 array (T, H, W, 3) RGB, (T, H, W) grey or (T, H·3/2, W) I420."""
        return np.stack([f.array(size, pixel_format) for f in self.frames(start, end)])

    def _decode(self, packets: Iterable[av.Packet], at_frame: int) -> Iterator[av.VideoFrame]:
        try:
            for packet in packets:
                for frame in packet.decode():
                    self.decoded_frames += 1
                    VideoReader.decoded_frames_total += 1
                    yield frame
        except av.FFmpegError as error:
            raise VideoReadError(self.path, f"cannot decode near frame {at_frame} ({error})") from error

    def _decoded(self, frame: av.VideoFrame, index: int, first_pts: int | None) -> DecodedFrame:
        base = frame.time_base or self._stream.time_base
        if frame.pts is not None and first_pts is not None and base is not None:
            time = float((frame.pts - first_pts) * base)
        else:
            time = index / self.fps if self.fps else 0.0
        return DecodedFrame(index, time, frame, int(getattr(frame, "rotation", 0) or 0) % 360)

    def _seeked(self, index: _FrameIndex, start: int, end: int | None) -> Iterator[DecodedFrame]:
        """Seek to the keyframe before `start`, decode forward; `_SeekMismatch` if frames don't line up."""
        target = index.pts[start]
        before = [key for key in index.keyframes if key[0] <= target]
        # The nearest keyframe first; a demuxer that lands elsewhere gets two earlier ones.
        for _, seek_to in reversed(before[-3:]):
            try:
                self._container.seek(seek_to, backward=True, any_frame=False, stream=self._stream)
            except av.FFmpegError:
                continue
            packets = self._container.demux(self._stream)
            first = next((p for p in packets if p.size), None)
            if first is None or not first.is_keyframe or first.pts is None or first.pts > target:
                continue
            due = start
            for frame in self._decode(chain([first], packets), start):
                position = index.position.get(frame.pts) if frame.pts is not None else None
                if position is None:
                    if frame.pts is not None and frame.pts < index.pts[0]:
                        continue  # an edit list's pre-roll, which a full decode does not output either
                    raise _SeekMismatch(f"a decoded timestamp ({frame.pts}) is not in the packet index")
                if position < due:
                    continue
                if position != due:
                    raise _SeekMismatch(f"decoding after a seek gave frame {position} where {due} was due")
                yield self._decoded(frame, position, index.pts[0])
                due += 1
                if due == (end if end is not None else len(index.pts)):
                    return
            raise _SeekMismatch(f"the stream ended at frame {due} of {len(index.pts)} after a seek")
        raise _SeekMismatch(f"no keyframe before frame {start} could be seeked to")

    def _forward(self, start: int, end: int | None, check_end: bool = True) -> Iterator[DecodedFrame]:
        """Decode from frame 0 in a fresh container, yielding frames [start, end)."""
        self._container.close()
        self._container = self._open()
        self._stream = self._container.streams.video[0]
        first_pts: int | None = None
        count = 0
        for count, frame in enumerate(self._decode(self._container.demux(self._stream), start), start=1):
            if count == 1:
                first_pts = frame.pts
            if count - 1 >= start:
                yield self._decoded(frame, count - 1, first_pts)
            if end is not None and count >= end:
                return
        if check_end and count == 0:
            raise VideoReadError(self.path, "the video stream holds no decodable frame")
        if check_end and (count <= start or end is not None):
            raise VideoReadError(self.path, f"frame range [{start}, {end}) is past its {count} frames")


def read_clip(
    path: Path | str,
    start: int = 0,
    end: int | None = None,
    size: Size | None = None,
    pixel_format: PixelFormat = "rgb24",
) -> np.ndarray:
    """Frames [start, end) of the video at `path`: uint8 (T, H, W, 3) RGB or (T, H, W) grey at `size`.

    `size` is (width, height) as shown; None keeps the video's size. Seeks to the keyframe before
    `start` (see the module docstring). `VideoReadError` names the file for bad ranges and files.
    """
    with VideoReader(path) as reader:
        return reader.read(start, end, size, pixel_format)


def iter_clip(
    path: Path | str,
    start: int = 0,
    end: int | None = None,
    size: Size | None = None,
    pixel_format: PixelFormat = "rgb24",
) -> Iterator[np.ndarray]:
    """`read_clip` one frame at a time, so memory holds one frame."""
    with VideoReader(path) as reader:
        for decoded in reader.frames(start, end):
            yield decoded.array(size, pixel_format)


def fit_height(size: Size, height: int) -> Size:
    """(width, height) scaled to `height` rows, the width keeping the aspect ratio and even (≥ 2)."""
    width, source_height = size
    return max(2, round(width * height / source_height / 2) * 2), height


# ---- writing ---------------------------------------------------------------------------------


def _fps_fraction(fps: float) -> Fraction:
    """An exact frame-rate fraction: 29.97 → 30000/1001, integers stay integers."""
    if abs(fps - round(fps)) < 1e-6:
        return Fraction(round(fps), 1)
    if abs(fps * 1.001 - round(fps * 1.001)) < 1e-3:
        return Fraction(round(fps * 1.001) * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _frame_size(frame: np.ndarray, input_format: str, path: Path) -> Size:
    if frame.dtype != np.uint8:
        raise VideoWriteError(f"{path}: frames must be uint8, got {frame.dtype}")
    if input_format == "yuv420p":
        if frame.ndim != 2 or frame.shape[0] % 3:
            raise VideoWriteError(f"{path}: yuv420p frames must be (H·3/2, W) planes, got {frame.shape}")
        return frame.shape[1], frame.shape[0] * 2 // 3
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise VideoWriteError(f"{path}: frames must be uint8 (H, W, 3) RGB, got {frame.shape}")
    return frame.shape[1], frame.shape[0]


def write_video(
    path: Path | str,
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int = 20,
    preset: str = "veryfast",
    pts: Iterable[int] | None = None,
    time_base: Fraction | None = None,
    metadata: Mapping[str, str] | None = None,
    input_format: Literal["rgb24", "yuv420p"] = "rgb24",
    keyframe_interval: int | None = None,
) -> int:
    """Encode frames as H.264/yuv420p MP4 at `path`, atomically; returns the number of frames written.

    Frames are uint8 RGB (H, W, 3), or with `input_format="yuv420p"` I420 planes (H·3/2, W) that are
    encoded as given (with `crf=0`, losslessly). H and W must be even. `pts` (in `time_base` units)
    gives explicit timestamps for variable-frame-rate output; by default frame i is shown at i / fps.
    `metadata` goes into the container's tags (e.g. `comment`); `keyframe_interval` caps the frames
    between keyframes (x264's default: 250), which bounds what a seeking reader decodes. The file
    is made 0644.

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
            container.metadata.update(dict(metadata or {}))
            stream = container.add_stream("libx264", rate=_fps_fraction(fps))
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "x264-params": "mbtree=0"}
            stream.codec_context.thread_count = 1
            if keyframe_interval is not None:
                stream.codec_context.gop_size = keyframe_interval
            if time_base is not None:
                stream.codec_context.time_base = time_base
                stream.time_base = time_base
            pts_iter = iter(pts) if pts is not None else None
            for array in frames:
                width, height = _frame_size(array, input_format, path)
                if count == 0:
                    if height % 2 or width % 2:
                        raise VideoWriteError(f"{path}: H.264 yuv420p needs even sizes, got {width}x{height}")
                    stream.width, stream.height = width, height
                elif (width, height) != (stream.width, stream.height):
                    raise VideoWriteError(
                        f"{path}: frame {count} is {width}x{height}, the first was {stream.width}x{stream.height}"
                    )
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=input_format)
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
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; videos are shared read-only
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return count

"""The one reader and writer: seeked clips equal a full decode, reads seek, writes are deterministic."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from curation.democorpus.photo_pool import real_video_paths
from media.video import (
    VideoReader,
    VideoReadError,
    VideoWriteError,
    fit_height,
    iter_clip,
    read_clip,
    write_video,
)

REAL = real_video_paths()
SMALL = (96, 64)  # (width, height): frames are compared at a small size to keep memory low


def _texture_frames(count: int, width: int = 128, height: int = 80, seed: int = 0) -> list[np.ndarray]:
    """Random 8 px blocks sliding 3 px per frame: every frame differs, so a wrong index shows."""
    blocks = np.random.default_rng(seed).integers(0, 256, (height // 8 + 1, (width + 3 * count) // 8 + 1, 3))
    texture = np.kron(blocks, np.ones((8, 8, 1))).astype(np.uint8)
    return [np.ascontiguousarray(texture[:height, 3 * i : 3 * i + width]) for i in range(count)]


def _assert_seeks_match_full_decode(path: Path, starts: list[int], length: int = 6) -> None:
    full = read_clip(path, size=SMALL)
    with VideoReader(path) as reader:
        assert reader.frame_count == len(full)
        for start in starts:
            end = min(start + length, len(full))
            clip = reader.read(start, end, SMALL)
            assert np.array_equal(clip, full[start:end]), f"{path.name}: frames [{start}, {end})"


@pytest.mark.parametrize("name", ["bikes", "city", "vtest"])
def test_seeked_clips_equal_the_full_decode_on_packaged_videos(name: str) -> None:
    """bikes: H.264 with B-frames in MP4; city: MPEG-2 in MPEG-PS, first pts 0.54 s; vtest: MS-MPEG4 in AVI."""
    path = REAL[name]
    with VideoReader(path) as reader:
        assert reader.seekable
        count = reader.frame_count
        keyframes = [i for i, key in enumerate(_keyframe_flags(path)) if key]
    # Around every keyframe (before, on, after it), the first and the last frames.
    starts = sorted({0, 1, count - 2} | {k + d for k in keyframes[1:6] for d in (-1, 0, 1)})
    _assert_seeks_match_full_decode(path, [s for s in starts if 0 <= s < count])


def _keyframe_flags(path: Path) -> list[bool]:
    with av.open(str(path)) as container:
        return [p.is_keyframe for p in container.demux(video=0) if p.size]


def test_native_size_frames_equal_the_full_decode() -> None:
    full = list(iter_clip(REAL["bikes"], 70, 80))
    assert full[0].shape == (272, 640, 3)
    with av.open(str(REAL["bikes"])) as container:
        reference = [
            f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if 70 <= i < 80
        ]
    assert all(np.array_equal(a, b) for a, b in zip(full, reference, strict=True))


def test_a_late_clip_of_a_long_video_does_not_decode_from_frame_0() -> None:
    path = REAL["vtest"]  # 795 frames, keyframes every 250
    with VideoReader(path) as reader:
        clip = reader.read(760, 770, SMALL)
        assert clip.shape == (10, 64, 96, 3)
        # From the keyframe at 750 to 769 (plus the decoder's look-ahead), not 770 frames.
        assert reader.decoded_frames <= 30
        before = reader.decoded_frames
        reader.read(300, 302, SMALL)
        assert reader.decoded_frames - before <= 60


def test_written_clips_with_keyframes_b_frames_and_a_late_first_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "cfr.mp4"
    frames = _texture_frames(60)
    write_video(path, frames, 25, keyframe_interval=12, pts=range(1000, 1060), time_base=Fraction(1, 25))
    with av.open(str(path)) as container:
        assert container.streams.video[0].start_time > 0
    _assert_seeks_match_full_decode(path, [1, 11, 12, 13, 24, 35, 47, 55])
    with VideoReader(path) as reader:
        reader.read(50, 52)
        assert reader.decoded_frames < 20


def test_variable_frame_rate_keeps_indices_and_times(tmp_path: Path) -> None:
    path = tmp_path / "vfr.mp4"
    durations = [20 if i % 3 else 40 for i in range(60)]  # ms: two frame rates mixed
    pts = np.cumsum([500, *durations[:-1]]).tolist()
    write_video(path, _texture_frames(60), 25, pts=pts, time_base=Fraction(1, 1000), keyframe_interval=10)
    _assert_seeks_match_full_decode(path, [3, 9, 10, 11, 29, 41, 57])
    with VideoReader(path) as reader:
        times = [frame.time for frame in reader.frames(20, 24)]
    assert times == pytest.approx([(t - 500) / 1000 for t in pts[20:24]])


def test_rotated_video_is_read_as_shown(tmp_path: Path) -> None:
    source, rotated = tmp_path / "plain.mp4", tmp_path / "rotated.mp4"
    write_video(source, _texture_frames(30), 25, keyframe_interval=8)
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", "-metadata:s:v:0", "rotate=90"]
    subprocess.run([*command, str(rotated)], check=True)
    with VideoReader(rotated) as reader:
        assert reader.size == (80, 128) and reader.coded_size == (128, 80)
        upright = read_clip(source, 17, 20)
        turned = reader.read(17, 20)
    assert turned.shape == (3, 128, 80, 3)
    assert np.array_equal(turned, np.rot90(upright, k=1, axes=(1, 2)))
    assert read_clip(rotated, 17, 20, size=(40, 64)).shape == (3, 64, 40, 3)
    _assert_seeks_match_full_decode(rotated, [5, 8, 9, 20])


def test_a_stream_without_timestamps_decodes_forward_with_the_same_frames(tmp_path: Path) -> None:
    source, raw = tmp_path / "source.mp4", tmp_path / "raw.h264"
    write_video(source, _texture_frames(40), 25, keyframe_interval=10)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c", "copy", str(raw)], check=True)
    with VideoReader(raw) as reader:
        assert not reader.seekable  # an elementary stream has no packet timestamps
        assert reader.frame_count == 40
    assert np.array_equal(read_clip(raw, 25, 31), read_clip(source, 25, 31))


def test_grey_and_scaled_frames(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, _texture_frames(12), 25)
    grey = read_clip(path, 2, 5, size=(64, 40), pixel_format="gray")
    assert grey.shape == (3, 40, 64) and grey.dtype == np.uint8
    planes = read_clip(path, 0, 2, pixel_format="yuv420p")
    assert planes.shape == (2, 120, 128)
    assert fit_height((1920, 1080), 256) == (456, 256)


def test_bad_files_and_ranges_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    write_video(path, _texture_frames(10), 25)
    with pytest.raises(VideoReadError, match=r"clip\.mp4: frame range \[8, 12\) is past its 10 frames"):
        read_clip(path, 8, 12)
    with pytest.raises(VideoReadError, match=r"clip\.mp4: frame range \[5, 5\) is empty"):
        read_clip(path, 5, 5)
    with pytest.raises(VideoReadError, match="missing.mp4: no such video file"):
        read_clip(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("not a video\n" * 20)
    with pytest.raises(VideoReadError, match="text.mp4: not a readable media file") as error:
        read_clip(tmp_path / "text.mp4")
    assert error.value.path == str(tmp_path / "text.mp4")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(VideoReadError, match="truncated.mp4"):
        read_clip(truncated)


def test_writes_are_byte_deterministic_atomic_and_shared_readable(tmp_path: Path) -> None:
    """Three writes in one process give the same bytes (x264's mbtree off), 0644, no temp files left."""
    frames = _texture_frames(20)
    paths = [tmp_path / f"{name}.mp4" for name in "abc"]
    for path in paths:
        write_video(path, frames, 24, metadata={"comment": '{"seed": 3}'})
    assert len({p.read_bytes() for p in paths}) == 1
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4", "c.mp4"]
    with VideoReader(paths[0]) as reader:
        assert reader.metadata["comment"] == '{"seed": 3}'


@pytest.mark.parametrize("fps", [24.0, 8.0, 30000 / 1001])
def test_written_video_is_h264_at_its_frame_rate(tmp_path: Path, fps: float) -> None:
    frames = _texture_frames(13, width=64, height=48)
    assert write_video(tmp_path / "clip.mp4", frames, fps) == 13
    with av.open(str(tmp_path / "clip.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert float(stream.average_rate) == pytest.approx(fps, rel=1e-3)
        assert (stream.width, stream.height) == (64, 48)
    back = read_clip(tmp_path / "clip.mp4")
    assert back.shape == (13, 48, 64, 3)
    assert (
        np.abs(back.astype(int) - np.stack(frames).astype(int)).mean() < 12
    )  # lossy (4:2:0 chroma on sharp colour edges) but close


def test_bad_frames_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(VideoWriteError, match="even sizes"):
        write_video(tmp_path / "odd.mp4", [np.zeros((9, 16, 3), np.uint8)], 24)
    with pytest.raises(VideoWriteError, match="uint8"):
        write_video(tmp_path / "float.mp4", [np.zeros((8, 16, 3), np.float32)], 24)
    with pytest.raises(VideoWriteError, match="frame 1 is 8x8"):
        write_video(
            tmp_path / "mixed.mp4", [np.zeros((8, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)], 24
        )
    with pytest.raises(VideoWriteError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [], 24)
    assert list(tmp_path.iterdir()) == []

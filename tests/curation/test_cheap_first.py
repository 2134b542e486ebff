"""Cheap signals first: the text-line detector that decides which clips OCR reads
(`curation.text_gate`), the unchanged-picture test before optical flow, full-resolution frames
converted only when read, and the cheaper arithmetic that gives the same values."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from curation.clip_signals import ClipSignalStream, DecodedFullFrames, _unchanged, full_frame_indices
from curation.config import ProbeConfig, SignalConfig
from curation.decode import decode_for_analysis, probe_video
from curation.ocr import median_of_planes
from curation.scenes import Clip
from curation.signals import Motion, _flow, motion_of
from curation.text_gate import text_line_area, worth_ocr
from media.video import VideoReader, write_video


def _frames(caption: str | None, moving: bool, count: int = 5) -> list[np.ndarray]:
    """256×456 RGB frames: a noise picture (shifted 7 px a frame when `moving`), and a
    white caption with a black outline at a fixed place."""
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (256, 600, 3), dtype=np.uint8), (5, 5), 1)
    frames = []
    for t in range(count):
        shift = 7 * t if moving else 0
        frame = np.ascontiguousarray(picture[:, shift : shift + 456])
        if caption is not None:
            for colour, thickness in (((0, 0, 0), 4), ((255, 255, 255), 1)):
                cv2.putText(
                    frame, caption, (60, 220), cv2.FONT_HERSHEY_SIMPLEX, 0.7, colour, thickness, cv2.LINE_AA
                )
        frames.append(frame)
    return frames


def test_a_caption_over_a_moving_picture_is_worth_ocr_and_the_picture_alone_is_not() -> None:
    assert worth_ocr(_frames("story desert paper planet harbor", moving=True))
    assert text_line_area(_frames(None, moving=True)) == 0.0
    assert not worth_ocr(_frames(None, moving=True))


def test_text_on_a_flat_still_picture_is_found_and_the_flat_picture_is_not() -> None:
    flat = [np.full((256, 456, 3), 90, np.uint8) for _ in range(3)]
    assert not worth_ocr(flat)
    texted = [f.copy() for f in flat]
    for frame in texted:
        cv2.putText(
            frame, "travel ocean garden night", (40, 128), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2
        )
    assert text_line_area(texted) > 0.005
    assert worth_ocr(texted)


def test_only_frames_that_do_not_change_skip_optical_flow() -> None:
    rng = np.random.default_rng(1)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (256, 400, 3), dtype=np.uint8), (5, 5), 1)
    box = (0, 0, 384, 256)
    still = np.stack([picture[:, :384]] * 8)
    assert _unchanged(still, 0, 8, 4, box)
    assert motion_of(still, 0, 8, 4, box) == Motion(0.0, 0.0)  # what skipping the flow reports
    panning = np.stack([picture[:, t : t + 384] for t in range(8)])  # 1 px a frame
    assert not _unchanged(panning, 0, 8, 4, box)
    # 0.1 px a frame at 256 rows: little between neighbours, but it adds up over the clip.
    drifting = np.stack(
        [cv2.warpAffine(picture, np.float32([[1, 0, -0.1 * t], [0, 1, 0]]), (400, 256)) for t in range(60)]
    )
    assert not _unchanged(drifting[:, :, :384], 0, 60, 6, box)
    # A still photo with light sensor noise changes: optical flow (and its noise handling) decides.
    noisy = np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
    assert not _unchanged(noisy, 0, 8, 4, box)
    # A low-contrast picture moving less than a grey level per pixel still changes.
    faint = np.stack([(picture[:, t : t + 384] // 64 + 100).astype(np.uint8) for t in range(8)])
    assert not _unchanged(faint, 0, 8, 4, box)


def test_the_static_overlay_median_equals_numpy_median_for_every_frame_count() -> None:
    rng = np.random.default_rng(2)
    for count in range(1, 10):
        stack = rng.integers(0, 256, (count, 37, 53)).astype(np.float32)
        median = median_of_planes(stack)
        assert median.dtype == np.float32
        assert np.array_equal(median, np.median(stack, axis=0))
    with pytest.raises(ValueError, match="empty"):
        median_of_planes(np.zeros((0, 4, 4), np.float32))


def test_flow_magnitude_is_the_euclidean_length_of_the_flow() -> None:
    rng = np.random.default_rng(4)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (128, 220), dtype=np.uint8), (5, 5), 1)
    moved = np.ascontiguousarray(np.roll(picture, 3, axis=1))
    flow, magnitude = _flow(picture, moved)
    assert flow.shape == (*picture.shape, 2)
    assert magnitude.shape == picture.shape and magnitude.dtype == np.float32
    np.testing.assert_allclose(magnitude, np.linalg.norm(flow, axis=2), rtol=1e-6, atol=1e-6)
    assert float(np.median(magnitude[16:-16, 16:-16])) == pytest.approx(3.0, abs=0.3)


def _video(path: Path, caption: bool) -> Path:
    """24 frames 640×360 of a picture panning 4 px a frame, with a big static caption or without."""
    rng = np.random.default_rng(5)
    picture = cv2.GaussianBlur(rng.integers(0, 255, (360, 800, 3), dtype=np.uint8), (9, 9), 3)
    frames = []
    for t in range(24):
        frame = np.ascontiguousarray(picture[:, 4 * t : 4 * t + 640])
        if caption:
            for colour, thickness in (((0, 0, 0), 8), ((255, 255, 255), 3)):
                cv2.putText(
                    frame, "STORY DESERT", (40, 300), cv2.FONT_HERSHEY_SIMPLEX, 2.0, colour, thickness
                )
        frames.append(frame)
    write_video(path, frames, 24.0, crf=18)
    return path


def test_full_frames_are_converted_only_for_the_signals_that_read_them(tmp_path: Path) -> None:
    config = SignalConfig()
    for caption in (False, True):
        path = _video(tmp_path / f"caption_{caption}.mp4", caption)
        clip = Clip(
            clip_id="c",
            source_path=str(path),
            source_sha256="0" * 64,
            shot_index=0,
            piece_index=0,
            start_frame=0,
            end_frame=24,
            start_time=0.0,
            end_time=1.0,
            fps=24.0,
            width=640,
            height=360,
            start_frame_sharpest=0,
        )
        stream = ClipSignalStream([clip], config)
        info = probe_video(path, ProbeConfig())
        decode_for_analysis(info, config.analysis_height, max_frames=1000, on_frame=stream)
        (row,), unfinished = stream.finish()
        assert unfinished == []
        # Without text the gate turns OCR away: only BRISQUE's middle frame became RGB.
        wanted = len(full_frame_indices(clip, config))
        assert stream.full_frames_converted == (wanted if caption else 1), caption
        assert (row["text_area"] > 0.01) == caption
        assert row["brisque"] is not None


def test_kept_decoded_frames_convert_once_to_the_readers_rgb(tmp_path: Path) -> None:
    path = _video(tmp_path / "v.mp4", caption=False)
    full = DecodedFullFrames()
    with VideoReader(path) as reader:
        expected = {}
        for frame in reader.frames(0, 6):
            if frame.index % 2 == 0:
                full.keep(frame.index, frame)
                expected[frame.index] = frame.array()
    assert sorted(full) == [0, 2, 4] and len(full) == 3 and full.converted == 0
    assert np.array_equal(full[2], expected[2]) and full[2].shape == (360, 640, 3)
    assert full[2] is full[2] and full.converted == 1
    full.drop(2)
    assert sorted(full) == [0, 4]
    assert np.array_equal(full[4], expected[4]) and full.converted == 2

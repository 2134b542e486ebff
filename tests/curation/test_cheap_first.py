"""Cheap signals first: the text-line detector that decides which clips OCR reads
(`curation.text_gate`), and the unchanged-picture test before optical flow."""

from __future__ import annotations

import cv2
import numpy as np

from curation.clip_signals import _unchanged
from curation.signals import Motion, motion_of
from curation.text_gate import text_line_area, worth_ocr


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

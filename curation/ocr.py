"""Burnt-in text area from tesseract OCR: the share of the frame covered by text lines.

Burnt-in text is an overlay that stays still while the picture under it changes. Tesseract reads
text on busy backgrounds badly, so before OCR the clip's frames (resized to at most `ocr_height`
rows) are combined into a *static-overlay image*: pixels whose grey value barely changes across
the frames (temporal std < 10) keep their median value, moving pixels become flat grey. Over a
moving shot only the overlays survive, on a clean background. When most of the picture is still
(a static shot), the plain middle frame is read instead. An overlay image with almost no edges
holds no text, and OCR is skipped for it.

Tesseract runs in-process (`curation.tesseract`: the model is loaded once per worker, not once per
clip) with sparse-text segmentation (`--psm 11`, LSTM). Words with
confidence ≥ `min_confidence` and at least two letters or digits are grouped into their lines; the
text area is the summed area of the line boxes / frame area.
"""

from __future__ import annotations

import cv2
import numpy as np

from curation.tesseract import Word, engine


def static_overlay_image(frames_rgb: list[np.ndarray], max_height: int) -> tuple[np.ndarray, bool]:
    """(grey (h, w) uint8, separated): still pixels keep their median, moving pixels are 128.

    `separated` is False, and the image is the middle frame's grey, when fewer than two frames
    are given or when more than 80 % of the picture is still (nothing moves to separate
    overlays from).
    """
    scale = min(1.0, max_height / frames_rgb[0].shape[0])
    greys = np.stack(
        [
            cv2.resize(
                cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
            )
            for f in frames_rgb
        ]
    ).astype(np.float32)  # (K, h, w)
    middle = greys[len(greys) // 2].astype(np.uint8)
    if len(greys) < 2:
        return middle, False
    still = greys.std(axis=0) < 10.0
    if still.mean() > 0.8:
        return middle, False
    return np.where(still, median_of_planes(greys), 128.0).astype(np.uint8), True


def median_of_planes(stack: np.ndarray) -> np.ndarray:
    """`np.median(stack, axis=0)` of a short stack (K, h, w) of frames, value for value.

    An odd-even transposition sort of the K planes with elementwise min/max (K rounds of whole-plane
    operations): numpy's median partitions each pixel's K values on its own, which made it most of
    the static-overlay image's cost.
    """
    planes = list(stack)
    count = len(planes)
    if count == 0:
        raise ValueError("median of an empty stack of frames")
    for round_ in range(count):
        for i in range(round_ % 2, count - 1, 2):
            planes[i], planes[i + 1] = (
                np.minimum(planes[i], planes[i + 1]),
                np.maximum(planes[i], planes[i + 1]),
            )
    middle = count // 2
    if count % 2:
        return planes[middle]
    return (planes[middle - 1] + planes[middle]) / 2


def has_text_candidates(image: np.ndarray, min_edge_fraction: float = 0.003) -> bool:
    """Whether a separated static-overlay image holds enough still edges to be worth OCR.

    Glyphs are dense in edges; an overlay image with fewer Canny edge pixels than
    `min_edge_fraction` of its area cannot hold a line of text, and tesseract (the slowest
    signal) is skipped.
    """
    edges = cv2.Canny(image, 100, 200)
    return bool((edges > 0).mean() >= min_edge_fraction)


LOWER_BAND = 0.6
"""Captions sit below this share of the picture height (a lower third and the rows above it)."""
LIGHT_TEXT = 170
"""Grey level above which a pixel of the lower band is read as light caption lettering."""
DARK_GROUND = 100
"""Grey level below which a pixel around a line of light lettering is its dark ground (a plate)."""


def lower_band_light_text(image: np.ndarray) -> np.ndarray:
    """The rows of `image` below `LOWER_BAND` of its height, 2× upscaled, light pixels (> `LIGHT_TEXT`)
    black on white: a lower-third caption's light lettering on its dark plate, as tesseract reads
    best (dark text on a plain light page, glyphs ≥ 20 px tall).

    Over a busy picture the whole-image read finds no caption: the plate, the scene showing
    through it and still scene edges beside it make tesseract segment garbage. Only the lettering
    is that bright inside a plate.
    """
    band = image[int(LOWER_BAND * image.shape[0]) :]
    band = cv2.resize(band, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_CUBIC)
    return np.where(band > LIGHT_TEXT, 0, 255).astype(np.uint8)


def _line_boxes(words: list[Word], min_confidence: float) -> list[list[int]]:
    """Boxes (x0, y0, x1, y1) of the text lines of the words that count (confidence, ≥ 2 alnum)."""
    lines: dict[tuple[int, int, int], list[int]] = {}
    for word in words:
        if word.confidence < min_confidence or sum(ch.isalnum() for ch in word.text) < 2:
            continue
        x0, y0, x1, y1 = word.box
        box = lines.setdefault(word.line, [x0, y0, x1, y1])
        box[:] = [min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)]
    return list(lines.values())


def _on_dark_ground(grey: np.ndarray, box: list[int], min_share: float = 0.7) -> bool:
    """Whether more than `min_share` of a ring around `box` (half the line's height wide) is darker
    than `DARK_GROUND` in `grey`: lettering on a caption plate, not an outlined subtitle over the
    scene (its 1-2 px outline is a small part of the ring)."""
    x0, y0, x1, y1 = box
    margin = (y1 - y0) // 2 + 2
    height, width = grey.shape
    rx0, ry0, rx1, ry1 = (
        max(0, x0 - margin),
        max(0, y0 - margin),
        min(width, x1 + margin),
        min(height, y1 + margin),
    )
    ring = np.ones((ry1 - ry0, rx1 - rx0), dtype=bool)
    ring[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0] = False
    return bool((grey[ry0:ry1, rx0:rx1][ring] < DARK_GROUND).mean() > min_share)


def lettering_on_plates(band: np.ndarray, middle_band: np.ndarray, min_share: float = 0.5) -> bool:
    """Cheap test before the lower band's OCR: whether it holds light lettering (> `LIGHT_TEXT`, at
    least 0.2 % of it) whose surroundings 3-5 px away are mostly (> `min_share`) darker than
    `DARK_GROUND` in the middle frame. `band` is the static-overlay image's lower band,
    `middle_band` the same rows of the middle frame (grey, same size)."""
    light = (band > LIGHT_TEXT).astype(np.uint8)
    if light.mean() <= 0.002:
        return False
    near = cv2.dilate(light, np.ones((5, 5), np.uint8)) > 0
    ring = (cv2.dilate(light, np.ones((11, 11), np.uint8)) > 0) & ~near
    return bool((middle_band[ring] < DARK_GROUND).mean() > min_share)


def text_area_ratio(frames_rgb: list[np.ndarray], ocr_height: int, min_confidence: float) -> float:
    """Text-line area / frame area in [0, 1] for a clip's frames (each (H, W, 3) RGB).

    The larger of two reads: the whole static-overlay image, and its lower band's light lettering
    (`lower_band_light_text`), read where `lettering_on_plates` finds some, whose lines count only
    on a dark ground in the middle frame (`_on_dark_ground`: a caption plate).
    """
    image, separated = static_overlay_image(frames_rgb, ocr_height)
    if separated and not has_text_candidates(image):
        return 0.0
    height, width = image.shape
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in _line_boxes(engine().words(image), min_confidence))
    middle = cv2.resize(
        cv2.cvtColor(frames_rgb[len(frames_rgb) // 2], cv2.COLOR_RGB2GRAY),
        (width, height),
        interpolation=cv2.INTER_AREA,
    )
    top = int(LOWER_BAND * height)
    if lettering_on_plates(image[top:], middle[top:]):
        # band pixels → image pixels: halve (2× upscale), shift down by the band's first row
        lines = [
            [x0 // 2, y0 // 2 + top, (x1 + 1) // 2, (y1 + 1) // 2 + top]
            for x0, y0, x1, y1 in _line_boxes(engine().words(lower_band_light_text(image)), min_confidence)
        ]
        plate_area = sum(
            (x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in lines if _on_dark_ground(middle, [x0, y0, x1, y1])
        )
        area = max(area, plate_area)
    return float(np.clip(area / float(height * width), 0.0, 1.0))

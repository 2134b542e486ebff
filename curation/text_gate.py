"""Cheap first: a text-line detector at the analysis height that decides whether a clip is worth OCR.

Tesseract is the slowest signal (about a CPU-second per clip, in its own process). Most clips hold
no burnt-in text, and those OCR reads as 0. This detector looks at the same kind of image OCR
reads (`curation.ocr.static_overlay_image`: still overlays on flat grey), built from the clip's
256-row analysis frames, and finds text-line candidates: the morphological gradient, binarised
(Otsu), closed along rows so the glyphs of a word merge, then connected components shaped like a
line of text (4 px to a fifth of the picture tall, at least twice as wide as tall, dense in
edges). OCR runs only when such candidates cover at least `min_line_area` of the picture.

It is a recall-first gate: it fires on small captions that OCR then reads as below any tier's
limit, and a clip it turns away gets `text_area` 0.0. At 256 rows a text line needs about 4 px of
height to be found, i.e. text ≥ 1.6 % of the picture height; text-area thresholds (≥ 0.005 of the
frame) are met only by much larger text.
"""

from __future__ import annotations

import cv2
import numpy as np

from curation.ocr import has_text_candidates, static_overlay_image

MIN_LINE_AREA = 0.001
"""Share of the picture text-line candidates must cover for OCR to run."""


def text_line_area(frames_rgb: list[np.ndarray], max_height: int = 256) -> float:
    """Area of text-line candidates / picture area (0-1) in the clip's static-overlay image."""
    image, separated = static_overlay_image(frames_rgb, max_height)
    if separated and not has_text_candidates(image):
        return 0.0
    gradient = cv2.morphologyEx(
        image, cv2.MORPH_GRADIENT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    )
    _, edges = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # Glyphs of a word (and words of a line) are a few px apart along the row.
    lines = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 1)))
    count, _, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    height, width = image.shape
    area = 0
    for x, y, w, h, pixels in stats[1:count]:
        if not 4 <= h <= 0.2 * height or w < 2 * h:
            continue
        # A line box is mostly filled once closed, and its glyphs are dense in edges.
        if pixels / (w * h) < 0.45 or edges[y : y + h, x : x + w].mean() / 255.0 < 0.2:
            continue
        area += int(w) * int(h)
    return area / float(height * width)


def worth_ocr(frames_rgb: list[np.ndarray], min_line_area: float = MIN_LINE_AREA) -> bool:
    """Whether the clip's analysis frames hold enough text-line candidates for OCR to run."""
    return text_line_area(frames_rgb) >= min_line_area

"""Cheap per-clip signals on analysis-size frames: motion, sharpness, black borders, watermark.

Inputs are `DecodedVideo.small` frames: (T, 256, w, 3) uint8 RGB, so every pixel quantity here
is "at 256p". Each function takes the clip's frames and returns plain floats/ints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def sample_indices(start: int, end: int, count: int) -> list[int]:
    """`count` frame indices spread evenly over `[start, end)` (fewer if the clip is shorter)."""
    if end - start <= count:
        return list(range(start, end))
    return [int(round(i)) for i in np.linspace(start, end - 1, count)]


@dataclass(frozen=True)
class Motion:
    """Optical-flow magnitude over the picture area, px/frame at 256p."""

    mean: float  # mean over pixels and pairs
    p95: float  # 95th percentile of pixel magnitudes (robust high value: a moving subject)


_DIS = None


def _dis() -> cv2.DISOpticalFlow:
    """One DIS flow object per process (creating it allocates its pyramids)."""
    global _DIS
    if _DIS is None:
        _DIS = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
    return _DIS


def motion_of(frames: np.ndarray, start: int, end: int, pairs: int, box: tuple[int, int, int, int]) -> Motion:
    """DIS optical flow between frames (t, t+1) at `pairs` places of the clip, inside `box`.

    `box` (x0, y0, x1, y1) is the picture area without black bars (bars never move).
    """
    if end - start < 2:
        return Motion(0.0, 0.0)
    x0, y0, x1, y1 = box
    magnitudes = []
    for t in sample_indices(start, end - 1, pairs):
        previous = cv2.cvtColor(frames[t][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        following = cv2.cvtColor(frames[t + 1][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
        flow = _dis().calc(previous, following, None)  # type: ignore[call-overload]
        magnitudes.append(np.linalg.norm(flow, axis=2).ravel())
    values = np.concatenate(magnitudes)
    return Motion(float(values.mean()), float(np.percentile(values, 95)))


def sharpness_of(frames: np.ndarray, indices: list[int], box: tuple[int, int, int, int]) -> float:
    """Mean variance of the Laplacian (grey, 256p) over the sampled frames, inside `box`."""
    x0, y0, x1, y1 = box
    return float(
        np.mean(
            [
                cv2.Laplacian(cv2.cvtColor(frames[i][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                for i in indices
            ]
        )
    )


def border_box(
    frames: np.ndarray, indices: list[int], max_luma: float, max_std: float
) -> tuple[int, int, int, int]:
    """The picture box (x0, y0, x1, y1) inside black bars, from the sampled frames.

    A row (column) belongs to a bar when, in every sampled frame, it is dark (mean luma ≤
    `max_luma`) and flat (std ≤ `max_std`); bars grow inwards from the frame edges only, and the
    two bars of a pair are cut to the thinner one (bars are symmetric, a dark band is not a bar).
    """
    grey = np.stack([cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in indices]).astype(np.float32)
    height, width = grey.shape[1:]

    def bar_lines(axis: int) -> np.ndarray:
        # axis=2: statistics along each row (→ per-row flags); axis=1: along each column.
        dark = (grey.mean(axis=axis) <= max_luma) & (grey.std(axis=axis) <= max_std)
        return dark.all(axis=0)

    rows, cols = bar_lines(2), bar_lines(1)

    def inner_edge(flags: np.ndarray) -> tuple[int, int]:
        first = int(np.argmin(flags)) if not flags.all() else len(flags)
        last = len(flags) - int(np.argmin(flags[::-1])) if not flags.all() else len(flags)
        return first, last

    y0, y1 = inner_edge(rows)
    x0, x1 = inner_edge(cols)
    # Letterbox and pillarbox bars are symmetric; a dark band on one side only is picture.
    top, bottom = min(y0, height - y1), min(y0, height - y1)
    left, right = min(x0, width - x1), min(x0, width - x1)
    y0, y1, x0, x1 = top, height - bottom, left, width - right
    if y1 <= y0 or x1 <= x0:  # an all-black clip: no picture box
        return (0, 0, width, height)
    return (x0, y0, x1, y1)


def border_ratio(box: tuple[int, int, int, int], width: int, height: int) -> float:
    """Bar area / frame area for a picture box."""
    x0, y0, x1, y1 = box
    return 1.0 - (x1 - x0) * (y1 - y0) / float(width * height)


def watermark_score(
    frames: np.ndarray,
    indices: list[int],
    box: tuple[int, int, int, int],
    edge_threshold: float,
    consistency: float = 0.8,
    motion_mean: float | None = None,
    min_motion: float = 0.15,
) -> tuple[float, str | None]:
    """How surely a static logo sits in a corner of the picture: (score 0-1, corner or None).

    A watermark is an overlay that stays put while the picture moves, so its edges keep the same
    gradient vector in every frame, while a moving (or shaking) background's gradients at a fixed
    pixel change direction and cancel in the mean. Per pixel, over the sampled frames: g = mean
    Sobel gradient vector; a *still edge* has |g| > `edge_threshold` and |g| / mean|gradient| >
    `consistency` (semi-transparent logos pass: the logo's part of the gradient is constant).
    Still-edge pixels are grouped into blobs (5×5 dilation); a blob counts when it lies inside
    one corner zone (30 % × 35 % of the picture), is squarish (aspect 1:2 … 2:1, so words of a caption
    and word-mark logos wider than 2:1 do not count) and has edges in
    several orientations (a straight edge sliding along itself also looks still). That rules out
    subtitles and text blocks spanning the frame. When the picture hardly moves (`motion_mean` <
    `min_motion` px/frame at 256p) nothing can be told apart and the score is 0.
    The score is the blob's still-edge density over its bounding box, / 0.15, clipped to 1.
    """
    if motion_mean is not None and motion_mean < min_motion:
        # A static or near-static picture: an overlay cannot be told from the scene. Undecided,
        # reported as 0 (the motion filter drops these clips anyway).
        return 0.0, None
    # Inset: the bar/picture boundary is itself a perfectly still edge.
    x0, y0, x1, y1 = box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2
    if len(indices) < 2 or x1 - x0 < 16 or y1 - y0 < 16:
        return 0.0, None
    sum_gx = sum_gy = sum_magnitude = None
    for i in indices:
        grey = cv2.cvtColor(frames[i][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        magnitude = cv2.magnitude(gx, gy)
        if sum_gx is None:
            sum_gx, sum_gy, sum_magnitude = gx, gy, magnitude
        else:
            sum_gx, sum_gy, sum_magnitude = sum_gx + gx, sum_gy + gy, sum_magnitude + magnitude
    assert sum_gx is not None and sum_gy is not None and sum_magnitude is not None
    mean_vector = cv2.magnitude(sum_gx, sum_gy) / len(indices)
    mean_magnitude = sum_magnitude / len(indices)
    still_edges = (mean_vector > edge_threshold) & (mean_vector > consistency * mean_magnitude)
    orientation = (np.degrees(np.arctan2(sum_gy, sum_gx)) % 180.0 // 45.0).astype(np.int64)  # 4 bins
    height, width = still_edges.shape
    mask = cv2.dilate(still_edges.astype(np.uint8), np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    best, best_corner = 0.0, None
    for label in range(1, count):
        bx, by, bw, bh, area = stats[label]
        if area < 0.001 * width * height or bw > 0.3 * width or bh > 0.35 * height:
            continue
        horizontal = "left" if bx + bw <= 0.3 * width else "right" if bx >= 0.7 * width else None
        vertical = "top" if by + bh <= 0.35 * height else "bottom" if by >= 0.65 * height else None
        # Squarish (1:2 … 2:1): a burnt-in word is wider than that, so corner words do not count.
        if horizontal is None or vertical is None or not 0.5 <= bw / bh <= 2.0:
            continue
        blob = still_edges[by : by + bh, bx : bx + bw]
        bins = np.bincount(orientation[by : by + bh, bx : bx + bw][blob], minlength=4)
        if bins.max() > 0.6 * bins.sum():
            # One edge orientation only: a straight edge sliding along itself (aperture problem).
            continue
        density = float(still_edges[by : by + bh, bx : bx + bw].mean())
        score = min(1.0, density / 0.15)
        if score > best:
            best, best_corner = score, f"{vertical}-{horizontal}"
    return best, best_corner

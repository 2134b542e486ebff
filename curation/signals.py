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
    p95: float  # 95th percentile of block speeds: the moving regions' speed (`motion_of`)


_DIS = None


def _dis() -> cv2.DISOpticalFlow:
    """One DIS flow object per process (creating it allocates its pyramids)."""
    global _DIS
    if _DIS is None:
        _DIS = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
    return _DIS


def _flow(previous: np.ndarray, following: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DIS optical flow between two grey frames: (flow (h, w, 2) px, its magnitude (h, w) px)."""
    flow = _dis().calc(previous, following, None)  # type: ignore[call-overload]
    # cv2.magnitude: the same float32 sqrt(dx² + dy²) as np.linalg.norm(flow, axis=2), ~10× faster.
    return flow, cv2.magnitude(flow[..., 0], flow[..., 1])


_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def _reliable(grey: np.ndarray, contrast: float) -> np.ndarray:
    """Pixels whose texture stands out of the sensor noise: where flow can be measured at all.

    The noise σ of the frame is estimated from its own pixels (Immerkær's fast estimate: the mean
    absolute response to a kernel that cancels smooth image structure; it overestimates on fine
    texture, which only makes the test stricter, and does not depend on motion). A pixel is
    reliable when the Sobel gradient of the slightly blurred frame exceeds `contrast` · σ. On flat
    areas (sky, a plain wall, a wallpaper) DIS turns noise into displacements of a pixel or more.
    """
    image = grey.astype(np.float32)
    response = cv2.filter2D(image, -1, _NOISE_KERNEL)[1:-1, 1:-1]
    sigma = float(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0) + 0.5
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    gradient = cv2.magnitude(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    return np.asarray(gradient > contrast * sigma)


def _block_speeds(flow: np.ndarray, reliable: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(speed (hb, wb) px, measured (hb, wb) bool) of about `block`-px blocks (hb = h // block):
    |mean flow vector| over the block's reliable pixels; a block is measured when ≥ 10 % of its
    pixels are reliable.

    The mean of the vectors, not of their magnitudes: a moving region's vectors agree, while the
    flow DIS finds in sensor noise points every way and partly cancels."""
    weight = reliable.astype(np.float32)
    size = (max(1, reliable.shape[1] // block), max(1, reliable.shape[0] // block))
    # INTER_AREA shrinking is the area-weighted mean over each block (exact at integer factors).
    summed = cv2.resize(cv2.multiply(flow, cv2.merge([weight, weight])), size, interpolation=cv2.INTER_AREA)
    share = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    mean_vector = (summed / np.maximum(share, 1e-6)[..., None]).astype(np.float64)
    # numpy, not cv2.magnitude: OpenCV copies the strided channel views into buffers whose
    # alignment varies, and its SIMD and scalar paths round differently (seen: the same clip's
    # p95 differed in the 7th digit between two runs); each numpy operation rounds once.
    speed = np.sqrt(np.square(mean_vector[..., 0]) + np.square(mean_vector[..., 1]))
    return speed.astype(np.float32), share >= 0.1


def motion_of(
    frames: np.ndarray,
    start: int,
    end: int,
    pairs: int,
    box: tuple[int, int, int, int],
    span: int = 4,
    fast: float = 1.0,
    contrast: float = 8.0,
    block: int = 16,
) -> Motion:
    """Optical-flow speed (px/frame at 256p) at `pairs` places of the clip, inside `box`.

    `box` (x0, y0, x1, y1) is the picture area without black bars (bars never move).

    Sensor noise is not motion, but DIS flow between two noisy frames of a still scene finds
    displacements of 0.1-0.3 px on textured areas and of a pixel or more on flat ones. Two
    defences, at each place t:
    - only *reliable* pixels count (`_reliable`: texture above `contrast` × the noise σ); when
      fewer than 2 % are, the picture is flat and the speed there is 0;
    - noise is independent from frame to frame, so its displacement does not grow with the time
      between frames, while a real movement's does. When the one-frame flow is slow (mean below
      `fast` px/frame) the flow over (t, t+`span`) is measured too; when it grew less than half as
      much as a steady movement would, the place is noise-dominated and its speed is that flow /
      `span` (the noise floor divided by `span`). A slow pan or a slowly moving subject grows
      steadily and keeps its one-frame speed; fast motion is never re-measured (over `span`
      frames large displacements and occlusions make DIS underestimate it).

    `mean` is the mean over the reliable pixels of all places. It dilutes a small moving subject
    over a still background (a character moving on a locked-off set reads as slow as a still
    photo), so `p95` measures the moving regions instead: per `block`-px block, the speed of its
    mean flow vector (`_block_speeds`), and where the flow was re-measured over `span` frames a
    block moves only if its displacement grew at least half as much as a steady movement's
    (noise's does not grow: that block's speed is 0); flat blocks are 0. A 3×3 median over the
    block map drops single-block flukes (a moving subject covers several blocks); `p95` is the
    95th percentile over the blocks of all places.
    """
    if end - start < 2:
        return Motion(0.0, 0.0)
    span = max(1, min(span, end - start - 1))
    x0, y0, x1, y1 = box

    def grey(t: int) -> np.ndarray:
        return cv2.cvtColor(frames[t][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)

    magnitudes: list[np.ndarray] = []
    block_speeds: list[np.ndarray] = []
    for t in sample_indices(start, end - span, pairs):
        previous = grey(t)
        reliable = _reliable(previous, contrast)
        if reliable.mean() < 0.02:
            magnitudes.append(np.zeros(1))
            block_speeds.append(np.zeros(1))
            continue
        flow, magnitude = _flow(previous, grey(t + 1))
        one = magnitude[reliable]
        speeds, measured = _block_speeds(flow, reliable, block)
        if span > 1 and one.mean() < fast:
            flow_spanned, magnitude_spanned = _flow(previous, grey(t + span))
            spanned = magnitude_spanned[reliable] / span
            if spanned.mean() < 0.5 * one.mean():
                one = spanned
            displaced, _ = _block_speeds(flow_spanned, reliable, block)
            speeds = np.where(displaced >= 0.5 * span * speeds, displaced / span, 0.0)
        magnitudes.append(one)
        block_speeds.append(cv2.medianBlur(np.where(measured, speeds, 0.0).astype(np.float32), 3).ravel())
    values = np.concatenate(magnitudes)
    return Motion(float(values.mean()), float(np.percentile(np.concatenate(block_speeds), 95)))


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
    frames: np.ndarray,
    indices: list[int],
    max_luma: float,
    max_std: float,
    min_edge_share: float = 0.1,
    edge_step: float = 12.0,
) -> tuple[int, int, int, int]:
    """The picture box (x0, y0, x1, y1) inside black bars, from the sampled frames.

    A row (column) belongs to a bar when, in every sampled frame, it is dark (mean luma ≤
    `max_luma`) and flat (std ≤ `max_std`); bars grow inwards from the frame edges only, and the
    two bars of a pair are cut to the thinner one (bars are symmetric, a dark band is not a bar).

    A bar ends at a straight edge where the picture starts; dark scene content (space around a
    planet, a night sky) ends where an object happens to touch it. So a pair of bars is kept only
    when, in at least one sampled frame, more than `min_edge_share` of the picture's first lines
    next to them (both sides) differ from the bars' mean luma by more than `edge_step` grey levels.
    A dark scene between real bars passes: its first lines are dark, yet not bar-black, over far
    more of their length than a round object's tangent point.
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
    vertical_bar, horizontal_bar = min(y0, height - y1), min(x0, width - x1)
    if vertical_bar >= height // 2 or horizontal_bar >= width // 2:  # an all-black clip: no picture box
        return (0, 0, width, height)
    y0, y1, x0, x1 = vertical_bar, height - vertical_bar, horizontal_bar, width - horizontal_bar

    def straight_edge(bars: np.ndarray, first_lines: np.ndarray) -> bool:
        # bars, first_lines: (K, …) per sampled frame; the share is per frame, the best frame counts.
        differs = np.abs(first_lines - bars.mean()) > edge_step
        return bool(differs.reshape(len(differs), -1).mean(axis=1).max() > min_edge_share)

    keep_rows = y0 == 0 or straight_edge(
        np.concatenate([grey[:, :y0, x0:x1], grey[:, y1:, x0:x1]], axis=1),
        np.stack([grey[:, y0, x0:x1], grey[:, y1 - 1, x0:x1]], axis=1),
    )
    keep_cols = x0 == 0 or straight_edge(
        np.concatenate([grey[:, y0:y1, :x0], grey[:, y0:y1, x1:]], axis=2),
        np.stack([grey[:, y0:y1, x0], grey[:, y0:y1, x1 - 1]], axis=1),
    )
    if not keep_rows:
        y0, y1 = 0, height
    if not keep_cols:
        x0, x1 = 0, width
    return (x0, y0, x1, y1)


def border_ratio(box: tuple[int, int, int, int], width: int, height: int) -> float:
    """Bar area / frame area for a picture box."""
    x0, y0, x1, y1 = box
    return 1.0 - (x1 - x0) * (y1 - y0) / float(width * height)


def _beside_text_line(mask: np.ndarray, bx: int, by: int, bw: int, bh: int) -> bool:
    """Whether the rows within 10 % of the height around a blob hold a run of still edges wider
    than 30 % of the picture that overlaps the blob's columns: a caption line next to it."""
    height, width = mask.shape
    margin = int(0.1 * height)
    band = np.ascontiguousarray(mask[max(0, by - margin) : min(height, by + bh + margin)])
    count, _, stats, _ = cv2.connectedComponentsWithStats(band, connectivity=8)
    return any(lw > 0.3 * width and lx < bx + bw and bx < lx + lw for lx, _, lw, _, _ in stats[1:count])


def watermark_score(
    frames: np.ndarray,
    indices: list[int],
    box: tuple[int, int, int, int],
    edge_threshold: float,
    consistency: float = 0.8,
    motion: float | None = None,
    min_motion: float = 0.15,
    max_aspect: float = 6.0,
    line_gap: float = 0.03,
    max_still_elsewhere: float = 0.08,
    corner_margin: float = 0.1,
) -> tuple[float, str | None]:
    """How surely a static logo sits in a corner of the picture: (score 0-1, corner or None).

    A watermark is an overlay that stays put while the picture moves, so its edges keep the same
    gradient vector in every frame, while a moving (or shaking) background's gradients at a fixed
    pixel change direction and cancel in the mean. Per pixel, over the sampled frames: g = mean
    Sobel gradient vector; a *still edge* has |g| > `edge_threshold` and |g| / mean|gradient| >
    `consistency`. A semi-transparent logo passes: the background's share of the gradient cancels
    in the mean, the logo's share (alpha × its own edges) stays.

    Still-edge pixels are grouped into blobs (5×5 dilation, then a horizontal closing over
    `line_gap` × the picture width, so the words of one caption line join into one wide blob).
    A blob beside a text line (`_beside_text_line`: a caption's short second line) never counts.
    A blob counts when it:
    - lies inside one corner zone (30 % × 35 % of the picture): a caption line spanning the lower
      third, a subtitle or a text block is wider and never counts;
    - reaches to within `corner_margin` of the picture's two edges at that corner: broadcast logos
      sit in the corner of the title-safe area (3-5 % in from the edges), while a still object of
      a locked-off shot (a door panel, a candle on a table) lies anywhere in the zone;
    - has an aspect between 1:2 and `max_aspect`:1 (emblems are squarish, station logos and
      text-in-a-box logos are wide) and is at least 3 % of the picture tall (legible);
    - has edges in several orientations (a straight edge sliding along itself also looks still);
    - is stiller than its surroundings: its still-edge density minus the density in a ring around
      it (half the blob's size wide). A slow move over a repetitive scene (a tilt along rows of
      windows) leaves still edges everywhere, a logo only on itself.
    The score is that density difference / 0.15, clipped to [0, 1]. A blob does not count when
    more than `max_still_elsewhere` of the rest of the picture (text lines left out) is still
    edges too: a locked-off
    shot, where a still object in a corner looks like a logo. When the picture hardly moves
    (`motion`, the moving regions' speed `Motion.p95`, < `min_motion` px/frame at 256p) nothing
    can be told apart and the score is 0.
    """
    if motion is not None and motion < min_motion:
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
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((1, max(3, int(line_gap * width))), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    # Still edges of the scene itself, for the locked-off test: text lines (wide, low blobs) are
    # overlays, not scene, and do not count.
    text_lines = [i for i in range(1, count) if stats[i][2] > 0.3 * width and stats[i][3] < 0.2 * height]
    scene_still = still_edges & ~np.isin(labels, text_lines)
    best, best_corner = 0.0, None
    for label in range(1, count):
        bx, by, bw, bh, area = stats[label]
        if area < 0.001 * width * height or bw > 0.3 * width or bh > 0.35 * height:
            continue
        if _beside_text_line(mask, bx, by, bw, bh):
            continue
        # Inside a corner zone, and reaching to within `corner_margin` of both of its edges.
        near_left, near_right = bx <= corner_margin * width, bx + bw >= (1.0 - corner_margin) * width
        near_top, near_bottom = by <= corner_margin * height, by + bh >= (1.0 - corner_margin) * height
        horizontal = "left" if near_left and bx + bw <= 0.3 * width else None
        horizontal = "right" if near_right and bx >= 0.7 * width else horizontal
        vertical = "top" if near_top and by + bh <= 0.35 * height else None
        vertical = "bottom" if near_bottom and by >= 0.65 * height else vertical
        if horizontal is None or vertical is None or not 0.5 <= bw / bh <= max_aspect:
            continue
        if bh < 0.03 * height:
            # Thinner than a legible logo (8 px at 256p): a short straight scene edge.
            continue
        blob = still_edges[by : by + bh, bx : bx + bw]
        bins = np.bincount(orientation[by : by + bh, bx : bx + bw][blob], minlength=4)
        if bins.max() > 0.6 * bins.sum():
            # One edge orientation only: a straight edge sliding along itself (aperture problem).
            continue
        pad = max(bw, bh) // 2
        rx0, ry0 = max(0, bx - pad), max(0, by - pad)
        rx1, ry1 = min(width, bx + bw + pad), min(height, by + bh + pad)
        ring_edges = int(still_edges[ry0:ry1, rx0:rx1].sum()) - int(blob.sum())
        ring_area = (rx1 - rx0) * (ry1 - ry0) - bw * bh
        ring_density = ring_edges / ring_area if ring_area > 0 else 0.0
        score = float(np.clip((float(blob.mean()) - ring_density) / 0.15, 0.0, 1.0))
        # A locked-off shot: the scene's own edges are still all over the picture, so a still
        # corner object (a lamp, a parked car) cannot be told from a logo. Undecided: 0.
        elsewhere = (int(scene_still.sum()) - int(blob.sum())) / float(height * width - bw * bh)
        if score > best and elsewhere <= max_still_elsewhere:
            best, best_corner = score, f"{vertical}-{horizontal}"
    return best, best_corner

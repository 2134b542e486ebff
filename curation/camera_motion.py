"""Camera-motion classifier: dominant image motion of a clip → one of the report's 14 classes.

Measurement
-----------
Frames are converted to grey and shrunk to at most `analysis_height` rows. Every pixel quantity
below is then expressed *at 256p* (multiplied by 256 / analysed height), so thresholds do not
depend on the resolution of the video or of the analysis. Coordinates are centred on the frame
centre.

0. Masks: black bars (rows/columns dark in every sampled frame) are masked out. Burnt-in
   overlays (subtitles, logos) are textured pixels that never change while most of the texture
   does (< 70 % of the textured pixels unchanged); they are masked out too, so their corners do
   not vote for "no motion". When most texture is unchanged nothing is masked (a still camera).
1. Per frame pair (stride 1, `max_pairs` evenly spread pairs at most): corners are detected per
   cell of a grid (at most `corners_per_cell` each, so text or one textured object cannot supply
   most of the points), tracked with pyramidal Lucas-Kanade and fitted with a RANSAC homography
   (`ransac_px` at the analysis size). RANSAC keeps the *dominant* motion, so a moving person or
   car that covers a minority of the cells does not decide it. These pairs give `path_speed`.
2. Long baseline: from `path_speed` a stride k is chosen so that one step moves ≈ 8 px; the
   homographies between frames (0, k), (k, 2k) … (tracks kept only when the backward track
   returns within 0.5 px) are chained into the net homography C of the clip (first analysed frame
   → last). Slow moves (0.05 px/frame) are measured over the whole clip at once this way, fast
   moves in steps short enough for LK.
3. From C (centred coordinates, 256p px, `C[2, 2] = 1`) over `span` frames:
   - translation t = (C02, C12): the motion of the frame centre (px), content direction.
   - zoom z = log sqrt|det C[:2, :2]|: > 0 when the content grows.
   - perspective p = (C20, C21) (1/px), summarised by the dimensionless keystone
     `kappa = -(p · t) W² / |t|²` (W = analysis width at 256p) and by the perspective flow
     `persp_px`: the mean over a grid of |flow(C) − flow(best affine fit of C)|.
     A camera rotation by θ about its centre (focal f px) gives C = K R K⁻¹, whose p = −t / f²
     exactly, so `kappa = (W / f)²` (≈ 0.5–4 for real lenses, 1.23 for the corpus' 58° view),
     while a translation parallel to the image plane gives p = 0, `kappa` = 0.
   - `net_speed`: mean grid displacement of C and of C⁻¹ (averaged, so zoom in and out of the
     same scale read alike) / span (px/frame); `path_speed`: mean grid displacement of the
     stride-1 pairs (px/frame); `straightness = net_speed / path_speed` (≤ 1).

Operational definitions (the classes, in the order the rules test them)
----------------------------------------------------------------------
The report's names overlap, so this project fixes them after `curation.camera_motion_classes`
(the demo corpus renders exactly these geometries): **pan = the camera translates parallel to the
image plane** (uniform image shift, no keystone; cinematographers call this truck/pedestal) and
**tilt = the camera rotates in place** (yaw for left/right, pitch for up/down; the shift comes
with a keystone). Left/right/up/down name where the *camera* goes, so the content moves the
other way (pan left ⇒ content moves right, t_x > 0).

- static shot: `net_speed < static_max_speed` (0.02 px/frame at 256p, ≈ 1.5 px over 3 s) and
  `path_speed < handheld_min_speed`.
- handheld shot: `path_speed ≥ handheld_min_speed` (0.3 px/frame) and `straightness <
  handheld_max_straightness` (0.5): it shakes more than it travels.
- zoom in / zoom out: the radial part dominates: `|z| · r̄ ≥ |t|` and `≥ persp_px /
  around_min_ratio` (r̄ = mean distance of the grid points from the centre); in when z > 0
  (content grows), out when z < 0.
- around left / around right: an orbit keeps the subject at the centre while the sides change
  depth, so the perspective flow dominates the centre's translation: `persp_px ≥
  around_min_ratio · |t|` (0.6) and the zoom. Right when the right side of the picture grows
  relative to the left (p_x < 0 in C: the camera travels right around the subject, nearer to its
  right side); left otherwise.
- tilt left/right/up/down: translation dominates and `kappa ≥ tilt_min_kappa` (0.35), the axis
  is the larger component of t; tilt left when t_x > 0 (camera yaws left, content moves right),
  right when t_x < 0, up when t_y > 0 (camera pitches up, content moves down), down when t_y < 0.
- pan left/right/up/down: translation dominates and `kappa < tilt_min_kappa`; same signs.

Confidence (0–1) is the product of: how far the deciding magnitude is from its threshold (a
logistic in log-ratio), the margin of the winning component over the runner-up, and the RANSAC
inlier fraction. Only labels with `confidence ≥ CaptionConfig.camera_min_confidence` enter
captions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from curation.camera_motion_classes import CAMERA_MOTIONS, CameraMotion
from media.video import VideoReader, VideoReadError
from model.presets import PresetConfig

__all__ = [
    "CAMERA_MOTIONS",
    "CameraMotion",
    "CameraMotionConfig",
    "CameraMotionResult",
    "MotionFeatures",
    "CameraMotionError",
    "classify_camera_motion",
    "classify_features",
    "measure_motion",
    "classify_shots",
    "classify_video",
]

REFERENCE_HEIGHT = 256.0
"""Pixel quantities are reported at this frame height (px/frame at 256p)."""


_OVERLAY_MAX_SHARE = 0.7
"""Unchanged pixels are masked as overlays only while they are under this share of the texture."""


class CameraMotionError(ValueError):
    """The frames cannot be analysed (too few frames, wrong dtype/shape, unreadable video)."""


@dataclass(frozen=True)
class CameraMotionConfig(PresetConfig):
    """Thresholds and sampling of the classifier; see the module docstring for each rule."""

    analysis_height: int = 256
    """Frames are resized to this many rows before tracking."""
    max_frames: int | None = None
    """Analyse at most this many frames from the start of the clip (None: all)."""
    grid: tuple[int, int] = (8, 6)
    """Feature cells (columns, rows); each contributes at most `corners_per_cell` corners."""
    corners_per_cell: int = 6
    max_pairs: int | None = None
    """Stride-1 pairs measured for the path speed, evenly spread (None: every pair)."""
    ransac_px: float = 1.0
    """RANSAC reprojection threshold at the analysis size (px)."""
    long_step_px: float = 8.0
    """Target displacement of one long-baseline step (px at 256p)."""
    static_max_speed: float = 0.02
    """px/frame at 256p: a net speed below this is a static shot."""
    handheld_min_speed: float = 0.3
    """px/frame at 256p: shake below this is not handheld."""
    handheld_max_straightness: float = 0.5
    """net / path speed below this (with enough path speed) is handheld."""
    tilt_min_kappa: float = 0.35
    """keystone `kappa` at or above this makes a translation a tilt (rotation)."""
    around_min_ratio: float = 0.6
    """perspective flow ≥ this × centre translation makes an orbit ('around')."""


CameraMotionConfig.PRESETS = {
    # CPU tests and the embedded default: 192 rows, at most 96 frames, 40 stride-1 pairs.
    "tiny": CameraMotionConfig(analysis_height=192, max_frames=96, max_pairs=40),
    # Curation at scale: 256 rows, the whole clip.
    "paper": CameraMotionConfig(),
}


@dataclass(frozen=True)
class MotionFeatures:
    """Measured motion of a clip; px quantities at 256p, see the module docstring."""

    n_frames: int
    span_frames: int
    net_speed: float
    path_speed: float
    straightness: float
    translation_px: tuple[float, float]
    zoom_log: float
    zoom_px: float
    roll_rad: float
    perspective: tuple[float, float]
    perspective_px: float
    kappa: float
    inlier_fraction: float
    tracked_points: float
    truncated: bool = False  # the shot had more than `max_frames` frames: only the first n_frames count


@dataclass(frozen=True)
class CameraMotionResult:
    """The class, its confidence in [0, 1], and the measured motion parameters."""

    label: CameraMotion
    confidence: float
    features: MotionFeatures

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: {"label", "confidence", "features": {...}}."""
        return {
            "label": self.label,
            "confidence": round(self.confidence, 4),
            "features": asdict(self.features),
        }


@dataclass(frozen=True)
class _Frames:
    grey: list[np.ndarray]
    mask: np.ndarray
    to_256: float  # multiply analysis px by this to get px at 256p
    truncated: bool  # frames past `max_frames` were given and left out


def _prepare(frames: Iterable[np.ndarray], config: CameraMotionConfig) -> _Frames:
    grey: list[np.ndarray] = []
    truncated = False
    for index, frame in enumerate(frames):
        if config.max_frames is not None and index >= config.max_frames:
            truncated = True
            break
        if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
            raise CameraMotionError(
                f"frame {index}: expected uint8 (H, W[, 3]), got {frame.dtype} {frame.shape}"
            )
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        height, width = image.shape
        if height > config.analysis_height:  # only ever shrink: upsampling adds no information
            new_w = max(16, round(width * config.analysis_height / height))
            image = cv2.resize(image, (new_w, config.analysis_height), interpolation=cv2.INTER_AREA)
        grey.append(image)
    if len(grey) < 2:
        raise CameraMotionError(f"camera motion needs at least 2 frames, got {len(grey)}")
    # Black bars are dark in every frame; mask them (and a 2 px rim) out of feature detection.
    brightest = np.max(np.stack(grey[:: max(1, len(grey) // 8)]), axis=0)
    rows = np.nonzero(brightest.max(axis=1) > 24)[0]
    cols = np.nonzero(brightest.max(axis=0) > 24)[0]
    mask = np.zeros_like(grey[0])
    if len(rows) and len(cols):
        mask[rows[0] + 2 : rows[-1] - 1, cols[0] + 2 : cols[-1] - 1] = 255
    # Burnt-in overlays (subtitles, logos) are textured pixels that never change while the rest
    # of the texture does; their corners would vote for "static", so they are masked out. The
    # share is taken over textured pixels only (flat sky never changes, whatever the camera
    # does). When most texture is unchanged the camera may simply be still: nothing is masked.
    # Blurred first so sensor noise does not count as change (not opened: glyph strokes are thin).
    samples = np.stack([cv2.GaussianBlur(g, (5, 5), 0) for g in grey[:: max(1, len(grey) // 12)]])
    unchanged = (samples.max(axis=0).astype(np.int16) - samples.min(axis=0)) < 6
    gradient = cv2.morphologyEx(grey[0], cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 40
    textured = (mask > 0) & gradient
    if textured.sum() >= 64 and unchanged[textured].mean() < _OVERLAY_MAX_SHARE:
        overlay = cv2.dilate(unchanged.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        mask[overlay] = 0
    return _Frames(grey=grey, mask=mask, to_256=REFERENCE_HEIGHT / grey[0].shape[0], truncated=truncated)


def _corners(image: np.ndarray, mask: np.ndarray, config: CameraMotionConfig) -> np.ndarray:
    """Corners (N, 1, 2) float32, the strongest `corners_per_cell` of every grid cell.

    Detecting per cell (quality relative to the cell's best corner) keeps weakly textured
    background in play next to corner-rich text or objects.
    """
    height, width = image.shape
    columns, rows = config.grid
    found = []
    for r in range(rows):
        for c in range(columns):
            y0, y1 = r * height // rows, (r + 1) * height // rows
            x0, x1 = c * width // columns, (c + 1) * width // columns
            cell_mask = mask[y0:y1, x0:x1]
            if cell_mask.max() == 0:
                continue
            points = cv2.goodFeaturesToTrack(
                image[y0:y1, x0:x1],
                maxCorners=config.corners_per_cell,
                qualityLevel=0.01,
                minDistance=max(3.0, (y1 - y0) / 6),
                mask=cell_mask,
                blockSize=5,
            )
            if points is not None:
                found.append(points + np.array([x0, y0], dtype=np.float32))
    if not found:
        return np.empty((0, 1, 2), dtype=np.float32)
    return np.concatenate(found).astype(np.float32)


@dataclass(frozen=True)
class _PairFit:
    homography: np.ndarray  # (3, 3) analysis px, frame a → frame b
    inliers: float  # fraction of tracked points that RANSAC kept
    tracked: int


_LK = {
    "winSize": (15, 15),
    "maxLevel": 3,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.01),
}


def _fit_pair(
    a: np.ndarray, b: np.ndarray, start: np.ndarray, config: CameraMotionConfig, check_backward: bool
) -> _PairFit | None:
    """Homography a → b from LK tracks of corners `start` of a, or None if too few tracks.

    With `check_backward`, a track counts only if tracking it back from b lands within 0.5 px
    of where it started (long baselines, where LK can lock onto a wrong texture).
    """
    if len(start) < 8:
        return None
    forward, status, _ = cv2.calcOpticalFlowPyrLK(a, b, start, None, **_LK)  # type: ignore[call-overload]
    good = status.ravel() == 1
    if check_backward:
        backward, status_back, _ = cv2.calcOpticalFlowPyrLK(b, a, forward, None, **_LK)  # type: ignore[call-overload]
        round_trip = np.linalg.norm((backward - start).reshape(-1, 2), axis=1)
        good &= (status_back.ravel() == 1) & (round_trip < 0.5)
    if good.sum() < 8:
        return None
    src, dst = start[good], forward[good]
    homography, inlier_mask = cv2.findHomography(
        src, dst, cv2.RANSAC, config.ransac_px, maxIters=2000, confidence=0.999
    )
    if homography is None:
        return None
    return _PairFit(
        homography=homography, inliers=float(inlier_mask.mean()) * good.mean(), tracked=int(good.sum())
    )


def _centred(homography: np.ndarray, width: int, height: int, to_256: float) -> np.ndarray:
    """Express an analysis-px homography in centred 256p coordinates (C[2, 2] = 1)."""
    to_centre = np.array(
        [[to_256, 0.0, -to_256 * width / 2], [0.0, to_256, -to_256 * height / 2], [0.0, 0.0, 1.0]]
    )
    centred = to_centre @ homography @ np.linalg.inv(to_centre)
    return centred / centred[2, 2]


def _grid(width: float, height: float) -> np.ndarray:
    """(3, 144) homogeneous points on a 16×9 grid over a centred frame of this size."""
    xs, ys = np.meshgrid(np.linspace(-0.45, 0.45, 16) * width, np.linspace(-0.45, 0.45, 9) * height)
    return np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])


def _flow(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(2, N) displacement of homogeneous `points` (3, N) under `homography`."""
    moved = homography @ points
    return moved[:2] / moved[2:] - points[:2]


def measure_motion(frames: Iterable[np.ndarray], config: CameraMotionConfig | None = None) -> MotionFeatures:
    """Measure the dominant camera motion of RGB (H, W, 3) or grey (H, W) uint8 frames."""
    config = config or CameraMotionConfig()
    prepared = _prepare(frames, config)
    grey, mask, to_256 = prepared.grey, prepared.mask, prepared.to_256
    height, width = grey[0].shape
    w256, h256 = width * to_256, height * to_256
    points = _grid(w256, h256)
    corner_cache: dict[int, np.ndarray] = {}

    def corners(index: int) -> np.ndarray:
        if index not in corner_cache:
            corner_cache[index] = _corners(grey[index], mask, config)
        return corner_cache[index]

    n_pairs = len(grey) - 1
    sampled = range(n_pairs)
    if config.max_pairs is not None and n_pairs > config.max_pairs:
        sampled = sorted({round(x) for x in np.linspace(0, n_pairs - 1, config.max_pairs)})  # type: ignore[assignment]
    pair_speeds, inliers, tracked = [], [], []
    for i in sampled:
        fit = _fit_pair(grey[i], grey[i + 1], corners(i), config, check_backward=False)
        if fit is None:
            continue
        centred = _centred(fit.homography, width, height, to_256)
        pair_speeds.append(float(np.linalg.norm(_flow(centred, points), axis=0).mean()))
        inliers.append(fit.inliers)
        tracked.append(fit.tracked)
    if not pair_speeds:
        raise CameraMotionError("no frame pair had enough trackable corners (flat or empty frames?)")
    path_speed = float(np.mean(pair_speeds))
    # Long baseline: steps of ≈ long_step_px, chained.
    stride = int(np.clip(round(config.long_step_px / max(path_speed, 1e-6)), 1, len(grey) - 1))
    stops = list(range(0, len(grey), stride))
    if stops[-1] != len(grey) - 1:
        stops.append(len(grey) - 1)
    chained = np.eye(3)
    span = 0
    for i, j in zip(stops[:-1], stops[1:], strict=True):
        fit = _fit_pair(grey[i], grey[j], corners(i), config, check_backward=True)
        if fit is None:
            continue  # a step that cannot be tracked is skipped; `span` counts measured frames only
        chained = _centred(fit.homography, width, height, to_256) @ chained
        chained /= chained[2, 2]
        span += j - i
    span = max(span, 1)
    features = _features(
        chained, span, len(grey), path_speed, float(np.mean(inliers)), float(np.mean(tracked)), w256, h256
    )
    return replace(features, truncated=prepared.truncated)


def _features(
    chained: np.ndarray,
    span: int,
    n_frames: int,
    path_speed: float,
    inlier_fraction: float,
    tracked: float,
    w256: float,
    h256: float,
) -> MotionFeatures:
    points = _grid(w256, h256)
    flow = _flow(chained, points)
    # Forward and backward displacement averaged, so zoom out (content shrinks, displacement
    # saturates) and zoom in of the same log-scale read the same net speed.
    backward = _flow(np.linalg.inv(chained), points)
    net_speed = (
        0.5 * float(np.linalg.norm(flow, axis=0).mean() + np.linalg.norm(backward, axis=0).mean()) / span
    )
    translation = (float(chained[0, 2]), float(chained[1, 2]))
    linear = chained[:2, :2]
    zoom_log = 0.5 * math.log(max(abs(float(np.linalg.det(linear))), 1e-9))
    radius = float(np.linalg.norm(points[:2], axis=0).mean())
    roll = math.atan2(float(linear[1, 0] - linear[0, 1]), float(linear[0, 0] + linear[1, 1]))
    # Perspective flow: what an affine fit of C's flow on the grid cannot explain.
    design = points.T  # (N, 3): x, y, 1
    target = (flow + points[:2]).T
    affine, *_ = np.linalg.lstsq(design, target, rcond=None)
    perspective_px = float(np.linalg.norm(design @ affine - target, axis=1).mean())
    p = (float(chained[2, 0]), float(chained[2, 1]))
    t2 = translation[0] ** 2 + translation[1] ** 2
    kappa = -(p[0] * translation[0] + p[1] * translation[1]) * w256**2 / max(t2, 1e-9)
    return MotionFeatures(
        n_frames=n_frames,
        span_frames=span,
        net_speed=net_speed,
        path_speed=path_speed,
        straightness=min(net_speed / max(path_speed, 1e-9), 1.0),
        translation_px=translation,
        zoom_log=zoom_log,
        zoom_px=abs(zoom_log) * radius,
        roll_rad=roll,
        perspective=p,
        perspective_px=perspective_px,
        kappa=kappa,
        inlier_fraction=inlier_fraction,
        tracked_points=tracked,
    )


def _support(ratio: float, sharpness: float = 4.0) -> float:
    """Logistic in log(ratio): 0.5 at ratio 1, ≈ 0.94 at 2, ≈ 0.06 at 0.5 (ratio = evidence / threshold)."""
    ratio = max(ratio, 1e-12)
    return 1.0 / (1.0 + ratio**-sharpness)


def classify_features(
    features: MotionFeatures, config: CameraMotionConfig | None = None
) -> CameraMotionResult:
    """Apply the operational definitions of the module docstring to measured `features`."""
    config = config or CameraMotionConfig()
    f = features
    # A fit that keeps < 80 % of the tracks, or long-baseline steps that could not be measured
    # (span_frames < n_frames - 1), lower the confidence proportionally.
    measured = f.span_frames / max(f.n_frames - 1, 1)
    quality = min(1.0, f.inlier_fraction / 0.8) * min(1.0, measured)
    tiny = 1e-9
    label: CameraMotion
    if f.net_speed < config.static_max_speed and f.path_speed < config.handheld_min_speed:
        confidence = _support(config.static_max_speed / max(f.net_speed, tiny)) * _support(
            config.handheld_min_speed / max(f.path_speed, tiny)
        )
        return CameraMotionResult("static shot", confidence * quality, f)
    if f.path_speed >= config.handheld_min_speed and f.straightness < config.handheld_max_straightness:
        confidence = _support(f.path_speed / config.handheld_min_speed) * _support(
            config.handheld_max_straightness / max(f.straightness, tiny)
        )
        return CameraMotionResult("handheld shot", confidence * quality, f)
    moving = _support(f.net_speed / config.static_max_speed) * _support(
        max(f.straightness, tiny) / config.handheld_max_straightness
    )
    tx, ty = f.translation_px
    shift = math.hypot(tx, ty)
    around = f.perspective_px / config.around_min_ratio
    components = {"zoom": f.zoom_px, "around": around, "shift": shift}
    winner = max(components, key=lambda name: components[name])
    runner_up = max(value for name, value in components.items() if name != winner)
    margin = _support(components[winner] / max(runner_up, tiny), sharpness=3.0)
    if winner == "zoom":
        label = "zoom in" if f.zoom_log > 0 else "zoom out"
        return CameraMotionResult(label, moving * margin * quality, f)
    if winner == "around":
        label = "around right" if f.perspective[0] < 0 else "around left"
        side = _support(abs(f.perspective[0]) / max(abs(f.perspective[1]), tiny), sharpness=2.0)
        return CameraMotionResult(label, moving * margin * side * quality, f)
    rotation = f.kappa >= config.tilt_min_kappa
    kind = _support(
        (f.kappa / config.tilt_min_kappa) if rotation else config.tilt_min_kappa / max(abs(f.kappa), tiny),
        sharpness=2.0,
    )
    horizontal = abs(tx) >= abs(ty)
    axis = _support(max(abs(tx), abs(ty)) / max(min(abs(tx), abs(ty)), tiny), sharpness=2.0)
    if horizontal:
        direction = "left" if tx > 0 else "right"  # content moves right when the camera goes left
    else:
        direction = "up" if ty > 0 else "down"  # content moves down when the camera goes up
    label = f"{'tilt' if rotation else 'pan'} {direction}"  # type: ignore[assignment]
    return CameraMotionResult(label, moving * margin * kind * axis * quality, f)


def classify_camera_motion(
    frames: Iterable[np.ndarray], config: CameraMotionConfig | None = None
) -> CameraMotionResult:
    """Measure and classify the camera motion of one shot given as uint8 frames (H, W[, 3], RGB)."""
    config = config or CameraMotionConfig()
    return classify_features(measure_motion(frames, config), config)


def classify_shots(
    path: Path, shots: list[tuple[int, int | None]], config: CameraMotionConfig | None = None
) -> list[CameraMotionResult]:
    """Classify several shots `[(start_frame, end_frame), ...]` of one video (end None: to the end).

    Each shot is decoded alone, seeking to its start, as grey frames shrunk to the analysis height
    inside the decode loop, so memory stays at one small image per frame. Raises
    `CameraMotionError` for a missing or undecodable file or a shot outside the video.
    """
    config = config or CameraMotionConfig()
    path = Path(path)
    results = []
    try:
        with VideoReader(path) as reader:
            width, height = reader.size
            size = None
            if height > config.analysis_height:
                size = (max(16, round(width * config.analysis_height / height)), config.analysis_height)
            for start, end in shots:
                if end is not None and end - start < 2:
                    raise CameraMotionError(f"{path}: shot [{start}, {end}) has fewer than 2 frames")
                # Decoding is lazy: `islice` stops it one frame past `max_frames`, which tells
                # whether the shot was longer than the cap (`MotionFeatures.truncated`).
                cap = None if config.max_frames is None else config.max_frames + 1
                shot = islice(reader.frames(start, end), cap)
                frames = [frame.array(size, "gray") for frame in shot]
                results.append(classify_camera_motion(frames, config))
    except VideoReadError as error:
        raise CameraMotionError(str(error)) from error
    return results


def classify_video(
    path: Path,
    config: CameraMotionConfig | None = None,
    start_frame: int = 0,
    end_frame: int | None = None,
) -> CameraMotionResult:
    """Classify frames [start_frame, end_frame) (default: all) of the video at `path` as one shot."""
    return classify_shots(path, [(start_frame, end_frame)], config)[0]

"""Reference-free temporal metrics of one video: temporal flickering, motion smoothness, dynamic degree.

Input contract (every function here): a uint8 RGB video (T, H, W, 3), frames as decoded. The
callers in `evaluation.video_metrics` first resize frames to the analysis size (short side 256 px
by default), so values are comparable across resolutions. Optical flow is OpenCV's DIS (Kroeger et
al. 2016, the MEDIUM preset) on grey frames; VBench uses RAFT and AMT, whose weights do not ship
offline, so where a metric follows VBench its docstring says what was substituted.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

# VBench expresses its pixel metrics on the 0–255 scale and its flow thresholds at 256 px.
_PIXEL_PEAK = 255.0
DYNAMIC_REFERENCE_SHORT_SIDE = 256


def _check_video(video: np.ndarray, min_frames: int, metric: str) -> None:
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(
            f"{metric}: expected a uint8 RGB video (T, H, W, 3), got dtype {video.dtype} shape {video.shape}"
        )
    if video.shape[0] < min_frames:
        raise ValueError(f"{metric}: needs at least {min_frames} frames, got {video.shape[0]}")


def _grey(video: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in video]


@functools.cache
def _dis() -> cv2.DISOpticalFlow:
    """One DIS object per process: creating it allocates its image pyramids."""
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]


def dis_flow(from_grey: np.ndarray, to_grey: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 DIS flow: pixel (x, y) of `from_grey` is found at (x, y) + flow in `to_grey`."""
    return _dis().calc(from_grey, to_grey, None)  # type: ignore[call-overload]


def _sample(image: np.ndarray, flow: np.ndarray, scale: float) -> np.ndarray:
    """`image` sampled at (x, y) + scale · flow(x, y), bilinear, edges replicated."""
    h, w = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        grid_x + scale * flow[..., 0],
        grid_y + scale * flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def temporal_flickering(video: np.ndarray) -> float:
    """Temporal flickering, VBench's definition (Huang et al. 2024, §3.2): (255 − MAE) / 255, where
    MAE is the mean absolute difference between consecutive frames over all pixels and channels on
    the 0–255 scale, averaged over frame pairs. Unitless in [0, 1]; 1 = no frame-to-frame change.

    VBench applies it to videos of static scenes; here it runs on every video, so real motion also
    lowers it a little (real footage scores ≈ 0.95–0.99), while flicker and noise lower it a lot.
    """
    _check_video(video, 2, "temporal_flickering")
    pair_mae = [
        float(np.mean(cv2.absdiff(video[t], video[t + 1]), dtype=np.float64)) for t in range(len(video) - 1)
    ]
    return float((_PIXEL_PEAK - np.mean(pair_mae)) / _PIXEL_PEAK)


def motion_smoothness(video: np.ndarray) -> float:
    """Motion smoothness as frame-interpolation error, VBench's protocol (§3.2) with a different
    interpolator: every odd frame t is dropped and re-synthesised from frames t−1 and t+1, and the
    score is (255 − MAE) / 255 with MAE the mean absolute error of the synthesised against the real
    odd frames (0–255 scale, all pixels and channels). Unitless in [0, 1]; 1 = perfectly
    predictable motion. VBench interpolates with AMT; here the midpoint frame is the average of both
    neighbours warped halfway along DIS optical flow (t−1 → t+1 and back), which assumes linear
    motion over two frames — as AMT's use in VBench does.
    """
    _check_video(video, 3, "motion_smoothness")
    grey = _grey(video)
    errors = []
    for t in range(1, len(video) - 1, 2):
        before, after = video[t - 1], video[t + 1]
        forward = dis_flow(grey[t - 1], grey[t + 1])  # (H, W, 2): before → after
        backward = dis_flow(grey[t + 1], grey[t - 1])
        # At midpoint pixel x the content came from before(x − d/2) and goes to after(x + d/2), with
        # d ≈ forward(x) ≈ −backward(x) for smooth flow.
        from_before = _sample(before, backward, 0.5).astype(np.float32)
        from_after = _sample(after, forward, 0.5).astype(np.float32)
        synthesised = 0.5 * (from_before + from_after)
        errors.append(float(np.mean(np.abs(synthesised - video[t].astype(np.float32)), dtype=np.float64)))
    return float((_PIXEL_PEAK - np.mean(errors)) / _PIXEL_PEAK)


def dynamic_degree(video: np.ndarray) -> float:
    """Dynamic degree as an optical-flow magnitude percentile, after VBench (§3.2): for each pair of
    consecutive frames, the 95th percentile of the DIS flow magnitude; the video's value is the mean
    over pairs. Units: pixels per frame, rescaled to a 256-px short side (so a 512-px video moving
    8 px/frame scores 4). VBench uses RAFT, averages the top 5 % of magnitudes and turns the result
    into a yes/no "dynamic" label (threshold 6 px at 256 px); here the continuous value is kept and
    the gate's threshold decides. 0 for a still video.
    """
    _check_video(video, 2, "dynamic_degree")
    grey = _grey(video)
    scale = DYNAMIC_REFERENCE_SHORT_SIDE / min(video.shape[1:3])
    p95 = []
    for t in range(len(video) - 1):
        flow = dis_flow(grey[t], grey[t + 1])
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        p95.append(float(np.percentile(magnitude, 95)))
    return float(np.mean(p95) * scale)

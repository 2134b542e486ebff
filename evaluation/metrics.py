"""Reconstruction metrics: PSNR, SSIM, perceptual distance, the flicker a reconstruction adds.

Reference-free metrics of generated videos (VBench-style, with calibrated gates) live in
`evaluation.video_metrics`.

Range contract (every function here):
- integer inputs (numpy or torch `uint8`) are pixel values in [0, 255]; the data range is 255;
- floating inputs are pixel values in [0, 1] (data range 1) unless `data_range` says otherwise.
  Model outputs in [-1, 1] go through `to_uint8` first: the VAE protocols round to uint8 before PSNR.
Layouts: an image is (H, W, C) or (H, W); a video is (T, H, W, C). Channels last, RGB, as decoded.
All arithmetic is float64, so results do not depend on the input dtype beyond its values.

PSNR is over all elements of what it is given (one image, or a whole video as one signal);
`frame_psnr` gives one value per frame (the MCL-JCV protocol averages those).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from model.perceptual import MobileNetFeatureDistance, PerceptualDistance

ArrayLike = np.ndarray | torch.Tensor


def _as_float64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _data_range(x: ArrayLike, data_range: float | None) -> float:
    if data_range is not None:
        return float(data_range)
    if isinstance(x, torch.Tensor):
        is_int, is_uint8 = not x.dtype.is_floating_point, x.dtype == torch.uint8
    else:
        is_int, is_uint8 = bool(np.issubdtype(x.dtype, np.integer)), x.dtype == np.uint8
    if is_int and not is_uint8:
        raise TypeError(
            f"metrics: integer input of dtype {x.dtype}; only uint8 has a known range (pass data_range)"
        )
    return 255.0 if is_int else 1.0


def _check_pair(a: ArrayLike, b: ArrayLike, what: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


def to_uint8(x: torch.Tensor | np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map floats in `value_range` to uint8 [0, 255]: clip, scale, round half to even (numpy's rint)."""
    lo, hi = value_range
    arr = _as_float64(x)
    return np.rint(np.clip((arr - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def mse(a: ArrayLike, b: ArrayLike) -> float:
    """Mean squared error over all elements, in the inputs' own units."""
    _check_pair(a, b, "mse")
    return float(np.mean((_as_float64(a) - _as_float64(b)) ** 2))


def psnr(a: ArrayLike, b: ArrayLike, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, 10·log10(range² / MSE) over all elements; inf if identical."""
    _check_pair(a, b, "psnr")
    err = mse(a, b)
    peak = _data_range(a, data_range)
    return float("inf") if err == 0.0 else float(10.0 * np.log10(peak**2 / err))


def frame_psnr(a: ArrayLike, b: ArrayLike, data_range: float | None = None) -> np.ndarray:
    """(T,) PSNR of each frame of two (T, H, W[, C]) videos."""
    _check_pair(a, b, "frame_psnr")
    return np.array([psnr(a[t], b[t], data_range) for t in range(a.shape[0])], dtype=np.float64)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)


def ssim(
    a: ArrayLike, b: ArrayLike, data_range: float | None = None, win_size: int = 11, sigma: float = 1.5
) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian window σ=1.5, K1=0.01, K2=0.03, population
    covariance, valid region only (no padding); mean over pixels, channels and frames. In [-1, 1],
    1 for identical. Matches `skimage.metrics.structural_similarity(gaussian_weights=True,
    use_sample_covariance=False, sigma=1.5)`. Images (H, W[, C]) or videos (T, H, W, C)."""
    _check_pair(a, b, "ssim")
    peak = _data_range(a, data_range)
    x, y = torch.from_numpy(_as_float64(a)), torch.from_numpy(_as_float64(b))
    if x.ndim == 2:  # (H, W) → (1, H, W, 1)
        x, y = x[None, ..., None], y[None, ..., None]
    elif x.ndim == 3:  # (H, W, C) → (1, H, W, C)
        x, y = x[None], y[None]
    if x.shape[1] < win_size or x.shape[2] < win_size:
        raise ValueError(f"ssim: images of {tuple(x.shape[1:3])} are smaller than the {win_size}px window")
    x = rearrange(x, "t h w c -> (t c) 1 h w")
    y = rearrange(y, "t h w c -> (t c) 1 h w")
    window = _gaussian_window(win_size, sigma)[None, None]

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window)

    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


@lru_cache(maxsize=1)
def default_perceptual() -> PerceptualDistance:
    """The offline default perceptual distance (MobileNetV2 features), loaded once per process."""
    return MobileNetFeatureDistance()


def _to_model_range(x: ArrayLike, data_range: float | None) -> torch.Tensor:
    """(…, H, W, C) pixels → float32 (N, 3, H, W) in [-1, 1]."""
    peak = _data_range(x, data_range)
    t = torch.from_numpy(_as_float64(x)).float() / peak * 2.0 - 1.0
    t = t.reshape(-1, *t.shape[-3:])
    return rearrange(t, "n h w c -> n c h w")


def perceptual_distance(
    a: ArrayLike, b: ArrayLike, data_range: float | None = None, metric: PerceptualDistance | None = None
) -> float:
    """Mean perceptual distance of RGB images (H, W, 3) or videos (T, H, W, 3), frames scored as images.

    `metric` defaults to `default_perceptual()`; its `.name` says which distance the number is.
    """
    _check_pair(a, b, "perceptual_distance")
    net = metric if metric is not None else default_perceptual()
    with torch.no_grad():
        d = net(_to_model_range(a, data_range), _to_model_range(b, data_range))
    return float(d.mean())


def temporal_flicker_error(
    reference: ArrayLike, reconstruction: ArrayLike, data_range: float | None = None
) -> float:
    """Flicker a reconstruction adds: mean |Δ_t recon − Δ_t ref| over consecutive-frame differences,
    in [0, 1] units of the data range. 0 when the reconstruction moves exactly like the reference
    (a constant per-pixel error scores 0; an error that changes from frame to frame does not)."""
    _check_pair(reference, reconstruction, "temporal_flicker_error")
    peak = _data_range(reference, data_range)
    ref, rec = _as_float64(reference) / peak, _as_float64(reconstruction) / peak
    if ref.shape[0] < 2:
        raise ValueError("temporal_flicker_error: needs videos of at least 2 frames")
    return float(np.mean(np.abs(np.diff(rec, axis=0) - np.diff(ref, axis=0))))

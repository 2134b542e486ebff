"""The VAE reconstruction grid: held-out photo | reconstruction | difference, one row per photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evaluation.heldout import heldout_images
from evaluation.vae_benchmarks import reconstruct
from evaluation.vae_grid import reconstruction_grid
from model.vae import CausalVAE3D, VAEConfig


def test_grid_rows_hold_the_photo_its_reconstruction_and_the_difference(tmp_path: Path) -> None:
    torch.manual_seed(0)
    vae = CausalVAE3D(VAEConfig.preset("tiny")).eval()
    out = reconstruction_grid(vae, tmp_path / "grid.png", size=64, items=2)
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape == (2 * 64, 3 * 64, 3)
    photo = heldout_images(64)[1][1]
    assert np.array_equal(grid[64:, :64], photo)
    recon = reconstruct(vae, photo)
    assert np.array_equal(grid[64:, 64:128], recon)
    expected = np.clip(np.abs(photo.astype(int) - recon.astype(int)) * 4, 0, 255)
    assert np.array_equal(grid[64:, 128:], expected.astype(np.uint8))

"""A picture of what the VAE does: held-out photos beside their reconstructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluation.heldout import heldout_images
from evaluation.vae_benchmarks import reconstruct


def reconstruction_grid(vae: Any, out: Path, size: int = 128, items: int = 4) -> Path:
    """Rows of (held-out photo | its reconstruction | 4× absolute difference), `items` rows of
    `size`² tiles, written to `out` (PNG) atomically. Raises ValueError when there is no photo."""
    photos = heldout_images(size)[:items]
    if not photos:
        raise ValueError("reconstruction_grid: the held-out photo set is empty")
    rows = []
    for _, photo in photos:
        recon = reconstruct(vae, photo)
        diff = np.clip(np.abs(photo.astype(np.int16) - recon.astype(np.int16)) * 4, 0, 255).astype(np.uint8)
        rows.append(np.concatenate([photo, recon, diff], axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    Image.fromarray(np.concatenate(rows, axis=0)).save(tmp)
    tmp.replace(out)
    return out

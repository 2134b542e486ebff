"""Reference reconstructions for the VAE PSNR floor: a mean-colour "VAE" and an 8× thumbnail.

A VAE gate must fail a model that has learned nothing. The cheapest such model predicts each image's
(or clip's) mean colour; its PSNR on the held-out set is the baseline the floor is set from:
floor = mean-colour PSNR + `VaeFloorConfig.margin_db`, per benchmark, on the same items the VAE is
scored on (`evaluation.heldout`). The margin is calibrated against a second reference, the 8×
thumbnail (area-downsample by 8, bilinear upsample back: what a latent of one colour per 8×8 patch
keeps), and recorded with those measurements.

PSNRs are averaged as `evaluation.vae_benchmarks.run_benchmark` does: one PSNR per image, or per
frame pooled over all clips; reconstructions are uint8 like the VAE's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from evaluation.metrics import frame_psnr, psnr
from model.presets import PresetConfig

THUMBNAIL_FACTOR = 8


def mean_colour_reconstruction(media: np.ndarray) -> np.ndarray:
    """uint8 image (H, W, 3) or clip (T, H, W, 3) → same shape filled with its mean colour
    (per channel, over all pixels and frames), rounded to uint8."""
    mean = media.reshape(-1, media.shape[-1]).mean(axis=0)
    return np.broadcast_to(np.rint(mean).astype(np.uint8), media.shape).copy()


def thumbnail_reconstruction(media: np.ndarray, factor: int = THUMBNAIL_FACTOR) -> np.ndarray:
    """uint8 image or clip → each frame area-downsampled by `factor` and bilinearly upsampled back."""
    frames = media[None] if media.ndim == 3 else media
    h, w = frames.shape[1:3]
    small = (max(1, w // factor), max(1, h // factor))
    out = np.stack(
        [
            cv2.resize(
                cv2.resize(f, small, interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_LINEAR
            )
            for f in frames
        ]
    )
    return out[0] if media.ndim == 3 else out


def baseline_psnr(items: Iterable[tuple[str, np.ndarray]], reconstruction: str = "mean_colour") -> float:
    """Mean PSNR (dB) of a reference reconstruction ("mean_colour" or "thumbnail") over uint8 items,
    averaged like the VAE benchmarks (per image, or per frame over all clips)."""
    recon = {"mean_colour": mean_colour_reconstruction, "thumbnail": thumbnail_reconstruction}.get(
        reconstruction
    )
    if recon is None:
        raise ValueError(
            f"baseline_psnr: unknown reconstruction {reconstruction!r}; use mean_colour or thumbnail"
        )
    values: list[float] = []
    for _, media in items:
        out = recon(media)
        values += frame_psnr(media, out).tolist() if media.ndim == 4 else [psnr(media, out)]
    if not values:
        raise ValueError("baseline_psnr: no items")
    return float(np.mean(values))


def heldout_baselines(
    image_size: int, frames: int, clip_size: int, limit: int | None = None
) -> dict[str, dict[str, float]]:
    """{"heldout_images" | "heldout_clips": {"mean_colour": dB, "thumbnail": dB}} on the held-out set
    at the sizes `vae_eval` uses (the benchmark names match its report)."""
    from evaluation.heldout import heldout_clips, heldout_images

    items = {
        "heldout_images": heldout_images(image_size)[:limit],
        "heldout_clips": heldout_clips(frames, clip_size, clip_size)[:limit],
    }
    return {
        name: {kind: baseline_psnr(media, kind) for kind in ("mean_colour", "thumbnail")}
        for name, media in items.items()
    }


@dataclass(frozen=True)
class VaeFloorConfig(PresetConfig):
    """The VAE PSNR floor, relative to the mean-colour baseline of each benchmark.

    margin_db: floor = mean-colour PSNR + margin_db (dB), per benchmark.
    measured: the baselines the margin was placed between, {benchmark: {"mean_colour", "thumbnail"}}
        in dB on the held-out set at this preset's sizes; the margin is half the smallest gap between
        them, so the floor sits between "learned nothing" and "kept an 8× thumbnail".
    image_size, frames, clip_size: the held-out sizes the preset's `vae_eval` uses.
    quality_target_db: an absolute floor on top (None: none). The degeneracy floor says "learned
        something"; at paper scale a VAE must also be good: 30 dB, below HunyuanVideo's VAE (33.14 dB
        on ImageNet 256², report Table 1) and the other published 4×8×8 VAEs (28.1–31.7 dB).
    """

    name: str
    margin_db: float
    image_size: int
    frames: int
    clip_size: int
    measured: dict[str, dict[str, float]]
    quality_target_db: float | None = None

    def floors(self, mean_colour_db: dict[str, float]) -> dict[str, float]:
        """{benchmark: floor dB} from each benchmark's mean-colour PSNR on the items being scored:
        mean-colour + margin, raised to `quality_target_db` where that is higher."""
        target = self.quality_target_db if self.quality_target_db is not None else float("-inf")
        return {name: max(value + self.margin_db, target) for name, value in mean_colour_db.items()}


def vae_floor_verdict(
    benchmark_psnr: dict[str, float],
    config: VaeFloorConfig,
    heldout_size: int,
    heldout_frames: int,
    limit: int | None = None,
) -> dict[str, Any]:
    """The VAE floor applied to a `vae_eval` report's held-out PSNRs ({benchmark: dB}).

    The mean-colour baseline is measured on the very items the VAE was scored on (`heldout_size`,
    `heldout_frames`, `limit`, as `evaluate_vae` picks them). Returns the JSON section `vae_eval`
    stores as `floor`: {"preset", "margin_db", "passed", "benchmarks": {name: {"psnr_db",
    "mean_colour_db", "floor_db", "passed", "shortfall_db"}}}; shortfall_db = floor − PSNR when it
    fails, else 0. Benchmarks without a mean-colour baseline here (ImageNet, MCL-JCV) are not gated.
    """
    baselines = heldout_baselines(heldout_size, heldout_frames, heldout_size, limit)
    missing = sorted(set(baselines) - set(benchmark_psnr))
    if missing:
        raise ValueError(
            f"vae floor: the report has no {', '.join(missing)} benchmark; run vae_eval with the held-out set"
        )
    mean_colour = {name: baselines[name]["mean_colour"] for name in baselines}
    rows = {}
    for name, floor in config.floors(mean_colour).items():
        value = benchmark_psnr[name]
        rows[name] = {
            "psnr_db": value,
            "mean_colour_db": mean_colour[name],
            "floor_db": floor,
            "passed": value >= floor,
            "shortfall_db": max(0.0, floor - value),
        }
    return {
        "preset": config.name,
        "margin_db": config.margin_db,
        "quality_target_db": config.quality_target_db,
        "passed": all(row["passed"] for row in rows.values()),
        "benchmarks": rows,
    }


def calibrated_margin(measured: dict[str, dict[str, float]]) -> float:
    """Half the smallest (thumbnail − mean-colour) gap over the benchmarks, in dB."""
    return min(b["thumbnail"] - b["mean_colour"] for b in measured.values()) / 2.0


# Measured with `heldout_baselines` on the 7 held-out photos (evaluation.heldout) at each preset's sizes.
VaeFloorConfig.PRESETS = {
    "tiny": VaeFloorConfig(
        name="tiny",
        margin_db=3.1,  # half of min(19.13 − 12.90, 21.16 − 13.21) dB
        image_size=64,
        frames=9,
        clip_size=64,
        measured={
            "heldout_images": {"mean_colour": 12.90, "thumbnail": 19.13},
            "heldout_clips": {"mean_colour": 13.21, "thumbnail": 21.16},
        },
    ),
    "paper": VaeFloorConfig(
        name="paper",
        margin_db=5.9,  # half of min(24.06 − 12.25, 26.90 − 12.61) dB
        image_size=256,
        frames=33,
        clip_size=256,
        measured={
            "heldout_images": {"mean_colour": 12.25, "thumbnail": 24.06},
            "heldout_clips": {"mean_colour": 12.61, "thumbnail": 26.90},
        },
        quality_target_db=30.0,
    ),
}

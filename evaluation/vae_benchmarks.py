"""VAE reconstruction benchmarks and the report in the layout of HunyuanVideo's Table 1.

Benchmarks (readers and preprocessing in `evaluation.vae_datasets`, held-out set in
`evaluation.heldout`):

| key                  | data                                   | PSNR averaged over            |
|----------------------|----------------------------------------|-------------------------------|
| `imagenet_256`       | ImageNet val, 256×256 centre crops     | images (one PSNR per image)   |
| `mcl_jcv_33x360x640` | MCL-JCV 30 sequences, first 33 frames  | frames of all sequences       |
| `heldout_images`     | held-out photos (embedded default)     | images                        |
| `heldout_clips`      | camera moves over held-out photos      | frames of all clips           |

Reconstruction: uint8 RGB → [-1, 1] → `vae.encode(x).mode()` (the posterior mean: deterministic)
→ `vae.decode` → clamp to [-1, 1] → rounded to uint8 (`evaluation.metrics.to_uint8`) → PSNR /
SSIM / perceptual distance against the uint8 input. Images go through the video VAE as one-frame
videos (the causal VAE encodes frame 0 on its own, so this is its image path). Published rows of
Table 1 are printed beside ours; only the `imagenet_256` and `mcl_jcv_33x360x640` columns are
comparable with them — held-out numbers are labelled as such.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from tqdm import tqdm

from evaluation.metrics import default_perceptual, frame_psnr, perceptual_distance, psnr, ssim, to_uint8
from model.perceptual import PerceptualDistance

# HunyuanVideo report, Table 1: (model, downsample factor, latent channels, ImageNet 256² PSNR, video PSNR).
PUBLISHED_TABLE1: tuple[tuple[str, str, int, float | None, float | None], ...] = (
    ("FLUX-VAE", "1×8×8", 16, 32.70, None),
    ("OpenSora-1.2", "4×8×8", 4, 28.11, 30.15),
    ("CogvideoX-1.5", "4×8×8", 16, 31.73, 33.22),
    ("Cosmos-VAE", "4×8×8", 16, 30.07, 32.76),
    ("HunyuanVideo (884-16c-hy)", "4×8×8", 16, 33.14, 35.39),
)


@dataclass
class BenchmarkResult:
    """Mean metrics of one benchmark; `per_item` has one row per image or sequence."""

    name: str
    kind: str  # "image" | "video"
    count: int
    frames: int
    psnr: float
    ssim: float
    perceptual: float
    perceptual_name: str
    seconds: float
    per_item: list[dict[str, Any]] = field(default_factory=list)


def _device_of(vae: torch.nn.Module) -> torch.device:
    return next(vae.parameters()).device


@torch.no_grad()
def reconstruct(
    vae: Any, media: np.ndarray, tiled: bool = False, autocast_dtype: torch.dtype | None = None
) -> np.ndarray:
    """uint8 image (H, W, 3) or video (F, H, W, 3) → its uint8 reconstruction, same shape."""
    is_image = media.ndim == 3
    video = media[None] if is_image else media
    device = _device_of(vae)
    x = torch.from_numpy(np.array(video, copy=True)).to(device)
    x = rearrange(x, "f h w c -> 1 c f h w").float() / 127.5 - 1.0
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        z = vae.encode(x, tiled=tiled).mode()
        out = vae.decode(z, tiled=tiled)
    recon = to_uint8(rearrange(out.float().clamp(-1, 1), "1 c f h w -> f h w c"))
    return recon[0] if is_image else recon


def run_benchmark(
    vae: Any,
    name: str,
    items: Iterable[tuple[str, np.ndarray]],
    metric: PerceptualDistance | None = None,
    tiled: bool = False,
    autocast_dtype: torch.dtype | None = None,
    total: int | None = None,
) -> BenchmarkResult:
    """Reconstruct every (name, uint8 media) item and average its metrics (see module table)."""
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    all_frame_psnr: list[float] = []
    kind = "image"
    for item_name, media in tqdm(items, desc=f"vae eval {name}", total=total, leave=False):
        recon = reconstruct(vae, media, tiled=tiled, autocast_dtype=autocast_dtype)
        if media.ndim == 4:
            kind = "video"
            per_frame = frame_psnr(media, recon)
            all_frame_psnr += per_frame.tolist()
            value = float(per_frame.mean())
        else:
            value = psnr(media, recon)
            all_frame_psnr.append(value)
        rows.append(
            {
                "name": item_name,
                "psnr": value,
                "ssim": ssim(media, recon),
                "perceptual": perceptual_distance(media, recon, metric=metric),
            }
        )
    if not rows:
        raise ValueError(f"benchmark {name}: no items to evaluate")
    return BenchmarkResult(
        name=name,
        kind=kind,
        count=len(rows),
        frames=len(all_frame_psnr),
        psnr=float(np.mean(all_frame_psnr)),  # per image, or per frame over all sequences
        ssim=float(np.mean([r["ssim"] for r in rows])),
        perceptual=float(np.mean([r["perceptual"] for r in rows])),
        perceptual_name=(metric or default_perceptual()).name,
        seconds=time.perf_counter() - start,
        per_item=rows,
    )


def build_report(
    results: list[BenchmarkResult], checkpoint: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON report: our benchmarks, the published Table 1 rows, and the markdown table."""
    report: dict[str, Any] = {
        "checkpoint": checkpoint,
        "benchmarks": {r.name: asdict(r) for r in results},
        "published_table1": [
            {
                "model": m,
                "downsample": d,
                "latent_channels": c,
                "imagenet_256_psnr": i,
                "video_33x360x640_psnr": v,
            }
            for m, d, c, i, v in PUBLISHED_TABLE1
        ],
        **(extra or {}),
    }
    report["table1_markdown"] = table1_markdown(report)
    return report


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def table1_markdown(report: dict[str, Any], our_label: str = "VideoFoundry VAE (this run)") -> str:
    """Table 1 layout (Model | Downsample | |z| | ImageNet 256² PSNR | Video 33×360×640 PSNR), published
    rows first, then ours; a second table carries the held-out (not comparable) numbers."""
    benchmarks = report["benchmarks"]
    downsample = report.get("downsample", "4×8×8")
    channels = report.get("latent_channels", 16)
    lines = [
        "| Model | Downsample Factor | \\|z\\| | ImageNet (256×256) PSNR↑ | Video (33×360×640) PSNR↑ |",
        "|---|---|---|---|---|",
    ]
    for m, d, c, i, v in PUBLISHED_TABLE1:
        lines.append(f"| {m} (published) | {d} | {c} | {_cell(i)} | {_cell(v)} |")
    imagenet = benchmarks.get("imagenet_256", {}).get("psnr")
    video = benchmarks.get("mcl_jcv_33x360x640", {}).get("psnr")
    lines.append(f"| **{our_label}** | {downsample} | {channels} | {_cell(imagenet)} | {_cell(video)} |")
    held = [b for k, b in benchmarks.items() if k.startswith("heldout")]
    if held:
        lines += [
            "",
            "Held-out demo set (embedded default; not comparable with the published columns):",
            "",
            "| Benchmark | Items | Frames | PSNR↑ | SSIM↑ | Perceptual↓ (metric) |",
            "|---|---|---|---|---|---|",
        ]
        for b in held:
            lines.append(
                f"| {b['name']} | {b['count']} | {b['frames']} | {b['psnr']:.2f} | {b['ssim']:.4f} | "
                f"{b['perceptual']:.4f} ({b['perceptual_name']}) |"
            )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write the JSON report atomically, and the markdown table beside it (`<out>.md`)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (out, json.dumps(report, indent=2)),
        (out.with_suffix(".md"), report["table1_markdown"]),
    ):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return out


class HeldoutEvaluator:
    """In-training evaluator: held-out PSNR (image and video) of a VAE, `vae -> {metric: value}`.

    Picklable (holds sizes; media are built lazily in the process that runs it), so Ray workers
    can carry it. Perceptual distance is skipped here to keep per-eval cost small.
    """

    def __init__(self, image_size: int = 64, frames: int = 9, size: int = 64, items: int = 4) -> None:
        self.image_size, self.frames, self.size, self.items = image_size, frames, size, items
        self._images: list[tuple[str, np.ndarray]] | None = None
        self._clips: list[tuple[str, np.ndarray]] | None = None

    def media(self) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
        from evaluation.heldout import heldout_clips, heldout_images

        if self._images is None or self._clips is None:
            self._images = heldout_images(self.image_size)[: self.items]
            self._clips = heldout_clips(self.frames, self.size, self.size)[: self.items]
        return self._images, self._clips

    def __call__(self, vae: Any) -> dict[str, float]:
        images, clips = self.media()
        image_psnr = [psnr(img, reconstruct(vae, img)) for _, img in images]
        frame_values = np.concatenate([frame_psnr(clip, reconstruct(vae, clip)) for _, clip in clips])
        return {"psnr_image": float(np.mean(image_psnr)), "psnr_video": float(np.mean(frame_values))}

    def samples(self, vae: Any) -> dict[str, np.ndarray]:
        """{'recon_images': grid (top: inputs, bottom: recons), 'recon_clip': (T, H, 2W, 3) side by side}."""
        images, clips = self.media()
        top = np.concatenate([img for _, img in images], axis=1)
        bottom = np.concatenate([reconstruct(vae, img) for _, img in images], axis=1)
        clip = clips[0][1]
        side_by_side = np.concatenate([clip, reconstruct(vae, clip)], axis=2)
        return {"recon_images": np.concatenate([top, bottom], axis=0), "recon_clip": side_by_side}


def evaluate_vae(
    vae: Any,
    checkpoint: str,
    imagenet: str | Path | None = None,
    mcl_jcv: str | Path | None = None,
    heldout: bool = True,
    limit: int | None = None,
    heldout_size: int = 256,
    heldout_frames: int = 33,
    tiled: bool = False,
    metric: PerceptualDistance | None = None,
) -> dict[str, Any]:
    """Run every benchmark whose data is given (plus the held-out set) and build the report."""
    from evaluation.heldout import heldout_clips, heldout_images
    from evaluation.vae_datasets import (
        imagenet_val_files,
        imagenet_val_images,
        mcl_jcv_files,
        mcl_jcv_sequences,
    )

    device = _device_of(vae)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    results = []
    if imagenet is not None:
        total = len(imagenet_val_files(imagenet)[:limit])
        results.append(
            run_benchmark(
                vae,
                "imagenet_256",
                imagenet_val_images(imagenet, limit=limit),
                metric,
                tiled,
                autocast,
                total,
            )
        )
    if mcl_jcv is not None:
        total = len(mcl_jcv_files(mcl_jcv)[:limit])
        results.append(
            run_benchmark(
                vae,
                "mcl_jcv_33x360x640",
                mcl_jcv_sequences(mcl_jcv, limit=limit),
                metric,
                tiled,
                autocast,
                total,
            )
        )
    if heldout:
        results.append(
            run_benchmark(
                vae, "heldout_images", heldout_images(heldout_size)[:limit], metric, tiled, autocast
            )
        )
        clips = heldout_clips(heldout_frames, heldout_size, heldout_size)[:limit]
        results.append(run_benchmark(vae, "heldout_clips", clips, metric, tiled, autocast))
    config = getattr(vae, "config", None)
    extra: dict[str, Any] = {"tiled": tiled, "device": str(device)}
    if config is not None:
        extra |= {
            "latent_channels": config.latent_channels,
            "downsample": f"{config.temporal_ratio}×{config.spatial_ratio}×{config.spatial_ratio}",
            "parameters": sum(p.numel() for p in vae.parameters()),
        }
    return build_report(results, checkpoint, extra)

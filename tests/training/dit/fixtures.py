"""Tiny synthetic clips for the DiT training tests: distinct colours and motions, known prompts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from media.video import write_video
from model.checkpoints import load_transformer
from training.dit.config import DiTTrainConfig
from training.dit.encoders import make_text_encoder, make_vae
from training.dit.latent_cache import ClipRecord
from training.dit.sampling import decode_to_frames, psnr, sample_latents
from training.dit.stages import StagePlan, prepare_stage
from training.tracking import TrackingSettings

CLIP_SPECS = (
    ("red_square", (220, 40, 40), (20, 20, 90), "a red square moving right on a dark blue field", 1.0, 1.0),
    ("green_disc", (40, 200, 60), (240, 240, 200), "a green disc drifting down over cream paper", 0.0, 1.5),
    ("yellow_bar", (250, 220, 30), (60, 10, 60), "a yellow bar sliding left across purple velvet", -1.0, 0.5),
    ("white_dot", (250, 250, 250), (10, 80, 20), "a white dot bouncing on green grass", 0.5, -1.0),
)


def render_clip(
    fg: tuple[int, int, int],
    bg: tuple[int, int, int],
    dx: float,
    dy: float,
    frames: int,
    size: tuple[int, int],
) -> np.ndarray:
    """(frames, H, W, 3) uint8: a foreground block moving by (dx, dy)·4 px a frame over a gradient background."""
    height, width = size
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.array(bg, dtype=np.float32)[None, None] * (0.6 + 0.4 * xx[..., None] / width)
    out = []
    for i in range(frames):
        frame = base.copy()
        cy, cx = height / 2 + dy * 4 * (i - frames / 2), width / 2 + dx * 4 * (i - frames / 2)
        mask = (np.abs(yy - cy) < height / 5) & (np.abs(xx - cx) < width / 5)
        frame[mask] = fg
        out.append(frame.clip(0, 255).astype(np.uint8))
    return np.stack(out)


def write_clips(
    directory: Path, frames: int = 12, size: tuple[int, int] = (48, 80), count: int = 4
) -> list[ClipRecord]:
    """Write `count` mp4 clips and return their records (weights 1, 2, 1, 2 …)."""
    directory.mkdir(parents=True, exist_ok=True)
    records = []
    for index, (name, fg, bg, prompt, dx, dy) in enumerate(CLIP_SPECS[:count]):
        path = directory / f"{name}.mp4"
        if not path.exists():
            write_video(path, list(render_clip(fg, bg, dx, dy, frames, size)), fps=8, crf=12)
        records.append(ClipRecord(name, path, 0, frames, prompt, weight=1.0 + index % 2))
    return records


def plan_first_stage(
    config: DiTTrainConfig, records: list[ClipRecord], root: Path, checkpoints: str
) -> StagePlan:
    """`image_256` planned without tracking: checkpoints under `root/checkpoints`, latents in `root/latents`."""
    return prepare_stage(
        config, "image_256", records, root / checkpoints, root / "latents", TrackingSettings(), progress=False
    )


@dataclass(frozen=True)
class OwnClipScores:
    """PSNRs (dB) of each prompt's sample against its own clip and the others, latent and decoded."""

    own_latent: list[float]  # per prompt: its sample vs its own clip's latent
    best_other_latent: list[float]  # per prompt: its sample vs the nearest other clip's latent
    own_pixel: list[float]
    other_pixel: list[float]  # every (prompt, other clip) pair

    @property
    def latent_margins(self) -> np.ndarray:
        return np.array(self.own_latent) - np.array(self.best_other_latent)

    @property
    def pixel_margin(self) -> float:
        return float(np.mean(self.own_pixel) - np.mean(self.other_pixel))


def own_clip_scores(
    checkpoint: Path, config: DiTTrainConfig, records: list[ClipRecord], latents: Path, seed: int
) -> OwnClipScores:
    """Sample each record's prompt from the transformer at `checkpoint` (20 steps, `seed`) and score
    it against every record's cached latent (`latents/*/*_f5_*`) and its decoded frames."""
    model = load_transformer(checkpoint / "transformer").eval()
    vae, text_encoder = make_vae(config, None), make_text_encoder(config)
    shards = {p.stem: load_file(str(p))["mean"] for p in latents.glob("*/*_f5_*/*.safetensors")}
    references = torch.stack([shards[r.clip_id] for r in records])
    samples = sample_latents(
        model,
        text_encoder.encode([r.prompt for r in records]),
        tuple(references.shape[1:]),
        num_steps=20,
        shift=1.0,
        guidance_scale=config.guidance.scale,
        seed=seed,
    )
    peak = float(references.max() - references.min())
    decoded_refs, decoded = decode_to_frames(vae, references), decode_to_frames(vae, samples)
    scores = OwnClipScores([], [], [], [])
    for i in range(len(records)):
        latent = [_latent_psnr(samples[i], references[j], peak) for j in range(len(records))]
        pixels = [psnr(decoded[i], decoded_refs[j]) for j in range(len(records))]
        scores.own_latent.append(latent[i])
        scores.best_other_latent.append(max(s for j, s in enumerate(latent) if j != i))
        scores.own_pixel.append(pixels[i])
        scores.other_pixel.extend(p for j, p in enumerate(pixels) if j != i)
    return scores


def _latent_psnr(sample: torch.Tensor, reference: torch.Tensor, peak: float) -> float:
    mse = float(((sample - reference) ** 2).mean())
    return 10.0 * float(np.log10(peak**2 / mse))

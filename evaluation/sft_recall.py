"""SFT recall: given an SFT clip's own training caption, does the model produce that clip?

The tiny demo model is trained on a handful of SFT clips; what it can honestly show is that it
learned them. For each reference clip (its training prompt and its first frames, already cropped
and resized to the size the clip was trained at) the model generates a video through
`serving.generate` at that size, and the decoded frames are scored by PSNR (dB, uint8 range)
against the clip. The mean PSNR over the clips is the `generations` asset's recall figure (the
demo's target: >= 18 dB at the tiny size). Beside it stands the clip's mean-colour PSNR (every
pixel the clip's average colour, scored on the same frames): a near-flat clip scores high against
any blur, so recall means something only where it beats that baseline. I2V recall pins the clip's first frame as the image, so
only the following frames are the model's work; it is scored on those frames only.

The decoded video can be no closer to the clip than the VAE lets it: what the DiT learned is the
clip's latent, whose decoding is the VAE's round trip of the clip (decode(encode(clip))). Where a
clip carries that round trip, each row also scores the video against it (the DiT's own share of
the error, whatever the VAE does) and the round trip against the clip (the VAE's ceiling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from evaluation.metrics import psnr

SFT_RECALL_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("mode", pa.string()),
        ("prompt", pa.string()),
        ("model_ref", pa.string()),
        ("frames", pa.int64()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("psnr_db", pa.float64()),
        ("mean_colour_psnr_db", pa.float64()),
        ("psnr_vs_vae_roundtrip_db", pa.float64()),  # null without a round trip
        ("vae_roundtrip_psnr_db", pa.float64()),  # the round trip against the clip
        ("path", pa.string()),
    ]
)
MODES = ("t2v", "i2v")


class RecallInputError(ValueError):
    """A reference clip is unusable (wrong shape or dtype, or too few frames for I2V)."""


@dataclass(frozen=True)
class RecallClip:
    """One SFT clip as trained: its id, training prompt and frames (F, H, W, 3) uint8; optionally
    `roundtrip`, the VAE's decode(encode(frames)) of the same shape
    (`evaluation.vae_benchmarks.reconstruct`)."""

    clip_id: str
    prompt: str
    frames: np.ndarray
    roundtrip: np.ndarray | None = None

    def __post_init__(self) -> None:
        shape = self.frames.shape
        if self.frames.dtype != np.uint8 or len(shape) != 4 or shape[-1] != 3:
            raise RecallInputError(
                f"clip {self.clip_id}: frames must be (F, H, W, 3) uint8, got {shape} {self.frames.dtype}"
            )
        if self.roundtrip is not None and (self.roundtrip.shape != shape or self.roundtrip.dtype != np.uint8):
            raise RecallInputError(
                f"clip {self.clip_id}: the VAE round trip must be {shape} uint8 like the frames, got "
                f"{self.roundtrip.shape} {self.roundtrip.dtype}"
            )


# generate(clip, mode) -> ((F, H, W, 3) uint8 at the clip's size, the mp4 written): the clip's
# prompt, and for "i2v" its first frame as the image.
GenerateFn = Callable[[RecallClip, str], tuple[np.ndarray, Path]]


def sft_recall(
    model_ref: str, clips: Sequence[RecallClip], generate: GenerateFn, modes: Sequence[str] = MODES
) -> pa.Table:
    """One row per (clip, mode) with the PSNR of the generated video against the clip, and against
    its VAE round trip where the clip has one (module docstring)."""
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise RecallInputError(f"unknown recall modes {unknown}; use {', '.join(MODES)}")
    rows: dict[str, list] = {name: [] for name in SFT_RECALL_SCHEMA.names}
    for clip in clips:
        frames, height, width = clip.frames.shape[:3]
        for mode in modes:
            if mode == "i2v" and frames < 2:
                raise RecallInputError(f"clip {clip.clip_id}: I2V recall needs at least 2 frames")
            video, path = generate(clip, mode)
            if video.shape != clip.frames.shape:
                raise RecallInputError(
                    f"clip {clip.clip_id}: generated {video.shape}, the reference is {clip.frames.shape}"
                )
            start = 1 if mode == "i2v" else 0
            rows["clip_id"].append(clip.clip_id)
            rows["mode"].append(mode)
            rows["prompt"].append(clip.prompt)
            rows["model_ref"].append(model_ref)
            rows["frames"].append(int(frames))
            rows["height"].append(int(height))
            rows["width"].append(int(width))
            reference = clip.frames[start:]
            flat = np.broadcast_to(clip.frames.reshape(-1, 3).mean(axis=0), reference.shape)
            rows["psnr_db"].append(psnr(video[start:], reference, data_range=255.0))
            rows["mean_colour_psnr_db"].append(psnr(flat, reference, data_range=255.0))
            roundtrip = None if clip.roundtrip is None else clip.roundtrip[start:]
            rows["psnr_vs_vae_roundtrip_db"].append(
                None if roundtrip is None else psnr(video[start:], roundtrip, data_range=255.0)
            )
            rows["vae_roundtrip_psnr_db"].append(
                None if roundtrip is None else psnr(roundtrip, reference, data_range=255.0)
            )
            rows["path"].append(str(path))
    return pa.table(rows, schema=SFT_RECALL_SCHEMA)


def mean_psnr(table: pa.Table, mode: str, column: str = "psnr_db") -> float | None:
    """Mean of `column` (dB) over the table's rows of `mode` with a value; None when it has none."""
    values = [
        v
        for m, v in zip(table["mode"].to_pylist(), table[column].to_pylist(), strict=True)
        if m == mode and v is not None
    ]
    return float(np.mean(values)) if values else None

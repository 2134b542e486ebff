"""Training prompts rendered from structured captions, with field dropout and order permutation.

The report varies caption length and form by dropping fields at random and permuting their
order. `render_training_prompt(caption, rng)` does this deterministically for a given generator
(seed it per clip and epoch for reproducible training data).
"""

from __future__ import annotations

import numpy as np

from curation.captions.config import PromptRenderConfig
from curation.captions.schema import CaptionField, StructuredCaption

_LABELS: dict[CaptionField, str] = {
    "short_description": "",
    "dense_description": "",
    "background": "Background",
    "style": "Style",
    "lighting": "Lighting",
    "atmosphere": "Atmosphere",
    "camera_movement": "Camera movement",
}


def _sentence(name: CaptionField, value: str) -> str:
    value = value.strip()
    label = _LABELS[name]
    text = f"{label}: {value}" if label else value
    return text if text.endswith((".", "!", "?")) else text + "."


def prompt_fields(caption: StructuredCaption) -> list[tuple[CaptionField, str]]:
    """(field, text) pairs in schema order; the camera movement only when the caption has one."""
    pairs: list[tuple[CaptionField, str]] = [
        ("short_description", caption.short_description),
        ("dense_description", caption.dense_description),
        ("background", caption.background),
        ("style", caption.style),
        ("lighting", caption.lighting),
        ("atmosphere", caption.atmosphere),
    ]
    if caption.camera_movement is not None:
        pairs.append(("camera_movement", caption.camera_movement))
    return pairs


def render_training_prompt(
    caption: StructuredCaption, rng: np.random.Generator, config: PromptRenderConfig | None = None
) -> str:
    """One training prompt: each field kept with probability 1 − dropout, kept fields shuffled.

    At least one field is always kept (the short description when `keep_short_description`,
    otherwise a random one), so a prompt is never empty.
    """
    config = config or PromptRenderConfig()
    pairs = prompt_fields(caption)
    keep = rng.random(len(pairs)) >= config.field_dropout
    if config.keep_short_description:
        keep[0] = True
    if not keep.any():
        keep[int(rng.integers(len(pairs)))] = True
    kept = [pair for pair, flag in zip(pairs, keep, strict=True) if flag]
    if config.permute:
        kept = [kept[i] for i in rng.permutation(len(kept))]
    return " ".join(_sentence(name, value) for name, value in kept)


def render_for_clip(
    caption: StructuredCaption,
    clip_id: str,
    epoch: int,
    seed: int = 0,
    config: PromptRenderConfig | None = None,
) -> str:
    """The prompt of `clip_id` at `epoch`: same inputs, same prompt, on any machine."""
    import zlib

    rng = np.random.default_rng([seed, epoch, zlib.crc32(clip_id.encode("utf-8"))])
    return render_training_prompt(caption, rng, config)

"""Training prompts rendered from the captions table, with field dropout and order permutation.

Curation writes one structured caption per clip into the captions table (`caption_json`: a JSON
object with the text fields `short_description`, `dense_description`, `background`, `style`,
`lighting`, `atmosphere`, and `camera_movement`, null when unknown). Training reads that JSON
here, knowing only the field names above.

The report varies caption length and form by dropping fields at random and permuting their order.
`render_training_prompt(caption, rng)` does this deterministically for a given generator;
`render_for_clip` seeds it per clip and epoch, so the same inputs give the same prompt anywhere.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# (field, label) in the order a full prompt reads; the description fields speak for themselves.
PROMPT_FIELDS: tuple[tuple[str, str], ...] = (
    ("short_description", ""),
    ("dense_description", ""),
    ("background", "Background"),
    ("style", "Style"),
    ("lighting", "Lighting"),
    ("atmosphere", "Atmosphere"),
    ("camera_movement", "Camera movement"),
)
REQUIRED_FIELDS = tuple(name for name, _ in PROMPT_FIELDS if name != "camera_movement")


class CaptionJSONError(ValueError):
    """A `caption_json` value is not a JSON object with the caption's text fields."""


class PromptRenderConfig(BaseModel):
    """Training-prompt rendering from the structured fields (field dropout and order permutation)."""

    model_config = ConfigDict(extra="forbid")

    field_dropout: float = Field(default=0.3, ge=0.0, lt=1.0, description="probability to drop each field")
    keep_short_description: bool = Field(default=True, description="never drop the one-sentence summary")
    permute: bool = Field(default=True, description="shuffle the order of the kept fields")


def parse_caption(caption_json: str) -> dict[str, Any]:
    """The caption object of one `caption_json` value; `CaptionJSONError` if fields are missing."""
    try:
        caption = json.loads(caption_json)
    except json.JSONDecodeError as error:
        raise CaptionJSONError(f"caption_json is not JSON ({error})") from error
    if not isinstance(caption, dict):
        raise CaptionJSONError(f"caption_json must be an object, got {type(caption).__name__}")
    missing = [name for name in REQUIRED_FIELDS if not str(caption.get(name) or "").strip()]
    if missing:
        raise CaptionJSONError(f"caption_json lacks the text fields {missing}")
    return caption


def _sentence(label: str, value: str) -> str:
    value = value.strip()
    text = f"{label}: {value}" if label else value
    return text if text.endswith((".", "!", "?")) else text + "."


def render_training_prompt(
    caption: Mapping[str, Any], rng: np.random.Generator, config: PromptRenderConfig | None = None
) -> str:
    """One training prompt: each field kept with probability 1 − dropout, kept fields shuffled.

    `caption` is a parsed caption object (`parse_caption`). At least one field is always kept (the
    short description when `keep_short_description`, otherwise a random one), so a prompt is never
    empty. The camera movement takes part only when the caption has one.
    """
    config = config or PromptRenderConfig()
    pairs = [(label, str(caption[name])) for name, label in PROMPT_FIELDS if caption.get(name) is not None]
    keep = rng.random(len(pairs)) >= config.field_dropout
    if config.keep_short_description:
        keep[0] = True
    if not keep.any():
        keep[int(rng.integers(len(pairs)))] = True
    kept = [pair for pair, flag in zip(pairs, keep, strict=True) if flag]
    if config.permute:
        kept = [kept[i] for i in rng.permutation(len(kept))]
    return " ".join(_sentence(label, value) for label, value in kept)


def render_for_clip(
    caption: Mapping[str, Any],
    clip_id: str,
    epoch: int,
    seed: int = 0,
    config: PromptRenderConfig | None = None,
) -> str:
    """The prompt of `clip_id` at `epoch`: same inputs, same prompt, on any machine."""
    rng = np.random.default_rng([seed, epoch, zlib.crc32(clip_id.encode("utf-8"))])
    return render_training_prompt(caption, rng, config)

"""Training prompts from the captions table's JSON: seedable, with field dropout and permutation."""

from __future__ import annotations

import numpy as np
import pytest

from curation.captions.schema import StructuredCaption
from training.dit.prompts import (
    CaptionJSONError,
    PromptRenderConfig,
    parse_caption,
    render_for_clip,
    render_training_prompt,
)

FIELDS = {
    "short_description": "A dog runs on a beach.",
    "dense_description": "A black dog runs along the waterline and chases a ball.",
    "background": "a sandy beach",
    "style": "wide shot",
    "lighting": "low evening sun",
    "atmosphere": "playful",
}


def _caption_json(**extra) -> str:
    """A caption as curation writes it into the `caption_json` column."""
    provenance = dict.fromkeys(FIELDS, "test")
    if extra.get("camera_movement"):
        provenance["camera_movement"] = "camera-motion-classifier"
    return StructuredCaption(**FIELDS, provenance=provenance, **extra).to_json()


def test_prompt_rendering_is_seedable_drops_and_permutes():
    caption = parse_caption(_caption_json(camera_movement="zoom in", camera_confidence=0.95))
    assert render_for_clip(caption, "clip-1", epoch=3) == render_for_clip(caption, "clip-1", epoch=3)
    prompts = {render_for_clip(caption, "clip-1", epoch=e) for e in range(40)}
    assert len(prompts) > 10  # dropout and permutation vary the prompt across epochs
    rng = np.random.default_rng(0)
    lengths, first_fields = [], set()
    for _ in range(200):
        text = render_training_prompt(caption, rng, PromptRenderConfig(field_dropout=0.5))
        assert FIELDS["short_description"] in text  # kept by default
        lengths.append(len(text))
        first_fields.add(text.split(".")[0])
    assert min(lengths) < 0.5 * max(lengths)
    assert len(first_fields) >= 4  # the short description is not always first
    full = render_training_prompt(caption, rng, PromptRenderConfig(field_dropout=0.0, permute=False))
    assert full.startswith(FIELDS["short_description"])
    assert full.endswith("Camera movement: zoom in.")
    lone = render_training_prompt(
        caption, rng, PromptRenderConfig(field_dropout=0.99, keep_short_description=False)
    )
    assert lone  # never empty


def test_a_caption_without_camera_movement_never_mentions_it():
    caption = parse_caption(_caption_json())
    full = render_training_prompt(
        caption, np.random.default_rng(0), PromptRenderConfig(field_dropout=0.0, permute=False)
    )
    assert full == (
        "A dog runs on a beach. A black dog runs along the waterline and chases a ball. "
        "Background: a sandy beach. Style: wide shot. Lighting: low evening sun. Atmosphere: playful."
    )


def test_malformed_caption_json_is_refused():
    with pytest.raises(CaptionJSONError, match="not JSON"):
        parse_caption("{not json")
    with pytest.raises(CaptionJSONError, match="must be an object"):
        parse_caption("[1, 2]")
    with pytest.raises(CaptionJSONError, match="background"):
        parse_caption(
            '{"short_description": "a", "dense_description": "b", "style": "c", '
            '"lighting": "d", "atmosphere": "e"}'
        )

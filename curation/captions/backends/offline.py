"""The offline default: a caption phrased by templates from measured facts only.

Nothing here is a guess about the content beyond the measurements in `ClipFacts`: a field with no
measurement says so ("not recognised", "not determined") instead of inventing. The words are the
offline substitute for a VLM (none ships on this machine) and are marked `offline-facts` in the
caption's provenance.
"""

from __future__ import annotations

from curation.captions.backends.base import camera_fields
from curation.captions.config import CaptionConfig
from curation.captions.facts import ClipFacts, measure_facts
from curation.captions.keyframes import ClipInput, ClipReadError
from curation.captions.schema import TEXT_FIELDS, CaptionRecord, StructuredCaption

BACKEND = "offline-facts"

_CAMERA_VERBS = {
    "zoom in": "zooms in",
    "zoom out": "zooms out",
    "pan up": "pans up",
    "pan down": "pans down",
    "pan left": "pans left",
    "pan right": "pans right",
    "tilt up": "tilts up",
    "tilt down": "tilts down",
    "tilt left": "tilts left",
    "tilt right": "tilts right",
    "around left": "circles the subject to the left",
    "around right": "circles the subject to the right",
    "static shot": "stays still",
    "handheld shot": "is handheld and shakes",
}

_SHOT_PHRASES = {
    "zoom in": "A shot zooming in on",
    "zoom out": "A shot zooming out from",
    "pan up": "A shot panning up over",
    "pan down": "A shot panning down over",
    "pan left": "A shot panning left over",
    "pan right": "A shot panning right over",
    "tilt up": "A shot tilting up over",
    "tilt down": "A shot tilting down over",
    "tilt left": "A shot tilting left over",
    "tilt right": "A shot tilting right over",
    "around left": "A shot circling left around",
    "around right": "A shot circling right around",
}


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _subject(facts: ClipFacts) -> str:
    if facts.imagenet:
        return _article(facts.imagenet[0][0])
    if facts.face_count == 1:
        return "a person"
    if facts.face_count > 1:
        return f"{facts.face_count} people"
    return "a scene the offline classifier does not recognise"


def _camera_label(facts: ClipFacts) -> str | None:
    return facts.camera.label if facts.camera is not None and facts.camera_confident else None


def short_description(facts: ClipFacts) -> str:
    """One sentence: camera and subject, e.g. 'A static shot of a tabby cat.'"""
    label = _camera_label(facts)
    if label == "static shot":
        shot = "A static shot of"
    elif label == "handheld shot":
        shot = "A handheld shot of"
    elif label is not None:
        shot = _SHOT_PHRASES[label]
    else:
        shot = "A shot of"
    text = f"{shot} {_subject(facts)}"
    if len(facts.ocr_words) >= 2:
        text += " with on-screen text"
    return text + "."


def dense_description(facts: ClipFacts) -> str:
    """Several sentences, one per measured fact."""
    info = facts.info
    sentences = [f"A {info.duration_s:.1f}-second clip at {info.width}x{info.height}."]
    label = _camera_label(facts)
    if label is not None:
        sentences.append(f"The camera {_CAMERA_VERBS[label]}.")
    else:
        sentences.append("The camera motion was not determined with confidence.")
    if facts.imagenet:
        seen = ", ".join(f"{name} ({probability:.0%})" for name, probability in facts.imagenet)
        sentences.append(f"An ImageNet classifier recognises: {seen}.")
    if facts.face_count:
        sentences.append(
            f"{facts.face_count} frontal face{'s are' if facts.face_count > 1 else ' is'} visible."
        )
    if facts.ocr_words:
        sentences.append(f'On-screen text reads "{" ".join(facts.ocr_words[:12])}".')
    if facts.edge_colours:
        sentences.append(f"The frame edges are mostly {' and '.join(facts.edge_colours[:2])}.")
    return " ".join(sentences)


def background(facts: ClipFacts) -> str:
    if facts.edge_colours:
        return f"surroundings mostly {' and '.join(facts.edge_colours[:2])} (colours at the frame edges)"
    return "mixed colours at the frame edges; no dominant colour"


def style(facts: ClipFacts) -> str:
    parts = []
    if facts.largest_face_ratio >= 0.35:
        parts.append("close-up")
    elif facts.largest_face_ratio >= 0.12:
        parts.append("medium shot")
    elif facts.face_count:
        parts.append("wide shot with people")
    label = _camera_label(facts)
    if label == "static shot":
        parts.append("static camera")
    elif label == "handheld shot":
        parts.append("handheld footage")
    elif label is not None:
        parts.append(f"moving camera ({label})")
    aspect = facts.info.width / max(facts.info.height, 1)
    parts.append("vertical video" if aspect < 1 else ("widescreen" if aspect >= 1.7 else "standard aspect"))
    if len(facts.ocr_words) >= 2:
        parts.append("with burnt-in text")
    return ", ".join(parts)


def lighting(facts: ClipFacts) -> str:
    level = (
        "dark"
        if facts.luminance < 0.2
        else "dim"
        if facts.luminance < 0.4
        else "moderately bright"
        if facts.luminance < 0.65
        else "bright"
    )
    contrast = (
        "low-contrast"
        if facts.contrast < 0.12
        else "high-contrast"
        if facts.contrast > 0.25
        else "moderate-contrast"
    )
    kelvin = facts.colour_temperature_k
    tone = "warm" if kelvin < 4000 else "cool" if kelvin > 7000 else "neutral"
    return (
        f"{level}, {contrast}, {tone} light (mean luma {facts.luminance:.2f}, "
        f"RMS contrast {facts.contrast:.2f}, about {kelvin:.0f} K)"
    )


def atmosphere(facts: ClipFacts) -> str:
    colours = (
        "muted colours"
        if facts.saturation < 0.2
        else "vivid colours"
        if facts.saturation > 0.45
        else "natural colours"
    )
    label = _camera_label(facts)
    if label is None:
        pace = "pace not determined"
    elif label == "static shot":
        pace = "calm"
    elif label == "handheld shot":
        pace = "restless"
    elif facts.camera is not None and facts.camera.features.net_speed > 2.0:
        pace = "dynamic"
    else:
        pace = "steady"
    return f"{pace}, {colours}"


def phrase_facts(facts: ClipFacts) -> dict[str, str]:
    """The six text fields phrased from `facts`."""
    return {
        "short_description": short_description(facts),
        "dense_description": dense_description(facts),
        "background": background(facts),
        "style": style(facts),
        "lighting": lighting(facts),
        "atmosphere": atmosphere(facts),
    }


class OfflineFactsBackend:
    """Caption backend (2): measured facts phrased by templates; runs everywhere, offline."""

    name = BACKEND

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config

    def caption_with_facts(self, clip: ClipInput) -> tuple[CaptionRecord, ClipFacts | None]:
        """The record and the facts it was phrased from (None when the clip could not be read)."""
        try:
            facts, _ = measure_facts(clip, self.config)
        except ClipReadError as error:
            return CaptionRecord(
                clip_id=clip.clip_id, backend=self.name, status="failed", attempts=1, error=str(error)
            ), None
        fields, provenance = camera_fields(facts.camera, self.config.camera_min_confidence)
        caption = StructuredCaption(
            **phrase_facts(facts),
            **fields,
            provenance={**{name: BACKEND for name in TEXT_FIELDS}, **provenance},
        )
        return CaptionRecord(
            clip_id=clip.clip_id, backend=self.name, status="ok", attempts=1, caption=caption
        ), facts

    def caption(self, clip: ClipInput) -> CaptionRecord:
        return self.caption_with_facts(clip)[0]

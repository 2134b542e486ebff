"""Caption backend (3): the demo corpus's ground truth for its own clips.

The corpus knows, per shot, the camera move it rendered, the photo it rendered over, burnt-in
text, logo and bars (`curation.democorpus.labels`). Those facts fill the fields they can (provenance
`demo-ground-truth`); the fields the labels know nothing about (lighting, atmosphere) come from
the fallback backend with its own provenance. A clip is matched to the shot of the same source
file with the largest frame overlap.
"""

from __future__ import annotations

from pathlib import Path

from curation.captions.backends.base import CaptionBackend
from curation.captions.keyframes import ClipInput
from curation.captions.schema import CaptionField, CaptionRecord, StructuredCaption
from curation.democorpus.labels import CorpusLabels, ShotLabel, load_labels

BACKEND = "demo-ground-truth"


def _photo_name(source_image: str) -> str:
    """'skimage/chelsea.png' → 'chelsea'; 'mate/nature/Dune.jpg' → 'Dune'."""
    return Path(source_image).stem.replace("_", " ")


def ground_truth_fields(shot: ShotLabel) -> dict[str, str]:
    """The text fields the shot's label can vouch for."""
    photo = _photo_name(shot.source_image) if shot.source_image else "a still photo"
    motion = shot.camera_motion or "an unlabelled camera move"
    fields = {
        "short_description": f"A synthetic {motion} over the photograph '{photo}'.",
        "background": f"the photograph '{photo}'",
    }
    dense = [f"A synthetic shot rendered over the photograph '{photo}' with the camera move '{motion}'."]
    if shot.slow_motion:
        dense.append("The move is very slow.")
    if shot.text_heavy:
        dense.append("Lines of burnt-in text cover a large part of the frame.")
    elif shot.text_area_ratio:
        dense.append("A subtitle line is burnt in.")
    if shot.watermark:
        dense.append("A semi-transparent logo sits in a corner.")
    if shot.border and shot.border != "none":
        dense.append(f"The picture is {shot.border}ed with black bars.")
    fields["dense_description"] = " ".join(dense)
    style = ["synthetic camera move over a still photo"]
    if shot.border and shot.border != "none":
        style.append(str(shot.border))
    if shot.text_heavy:
        style.append("text-heavy")
    fields["style"] = ", ".join(style)
    return fields


class GroundTruthBackend:
    """Demo-corpus truth for the fields it knows, `fallback` for the rest (per-field provenance)."""

    name = BACKEND

    def __init__(self, labels: CorpusLabels | Path, fallback: CaptionBackend) -> None:
        self.labels = labels if isinstance(labels, CorpusLabels) else load_labels(Path(labels))
        self.fallback = fallback

    def shot_for(self, clip: ClipInput) -> ShotLabel | None:
        """The labelled synthetic shot the clip was cut from; None for other clips and real footage."""
        if clip.source_file is None:
            return None
        name = Path(clip.source_file).name
        start = clip.source_start_frame or 0
        best, best_overlap = None, 0
        for video in self.labels.videos:
            if video.file != name:
                continue
            end = clip.source_end_frame if clip.source_end_frame is not None else video.frame_count
            for shot in video.shots:
                if shot.source_image is None:
                    continue  # real footage: the corpus labels nothing about its content
                overlap = min(end, shot.end_frame) - max(start, shot.start_frame)
                if overlap > best_overlap:
                    best, best_overlap = shot, overlap
        return best

    def caption(self, clip: ClipInput) -> CaptionRecord:
        base = self.fallback.caption(clip)
        shot = self.shot_for(clip)
        if shot is None or base.caption is None:
            return base  # not a corpus clip (or unreadable): the fallback's record stands
        known = ground_truth_fields(shot)
        values = base.caption.model_dump()
        provenance: dict[CaptionField, str] = dict(base.caption.provenance)
        for name, text in known.items():
            values[name] = text
            provenance[name] = BACKEND  # type: ignore[index]
        if shot.camera_motion is not None:
            # The rendered move is the truth, whatever the classifier measured.
            values["camera_movement"] = shot.camera_motion
            values["camera_confidence"] = 1.0
            provenance["camera_movement"] = BACKEND
        values["provenance"] = provenance
        return CaptionRecord(
            clip_id=clip.clip_id,
            backend=self.name,
            status=base.status,
            attempts=base.attempts,
            caption=StructuredCaption.model_validate(values),
        )

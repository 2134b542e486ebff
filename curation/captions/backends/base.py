"""The one interface every caption backend implements, and the camera fields they share."""

from __future__ import annotations

from typing import Any, Protocol

from curation.camera_motion import CameraMotionConfig, CameraMotionError, CameraMotionResult, classify_video
from curation.captions.keyframes import ClipInput
from curation.captions.schema import CaptionField, CaptionRecord

CAMERA_BACKEND = "camera-motion-classifier"


class CaptionBackend(Protocol):
    """Writes one `CaptionRecord` per clip: a validated caption, or a failure with its reason."""

    name: str

    def caption(self, clip: ClipInput) -> CaptionRecord:
        """Caption `clip`. Must not raise for a bad model answer: record the failure instead."""
        ...


def camera_fields(
    camera: CameraMotionResult | None, min_confidence: float
) -> tuple[dict[str, Any], dict[CaptionField, str]]:
    """(caption fields, provenance) for the camera movement: set only when the label is confident."""
    if camera is None or camera.confidence < min_confidence:
        return {}, {}
    return (
        {"camera_movement": camera.label, "camera_confidence": round(camera.confidence, 4)},
        {"camera_movement": CAMERA_BACKEND},
    )


def classify_clip_camera(clip: ClipInput, preset: str) -> CameraMotionResult | None:
    """The camera-motion result of a clip, or None when it cannot be analysed (too short, flat)."""
    config = CameraMotionConfig.preset(preset)
    try:
        return classify_video(clip.video, config, clip.start_frame, clip.end_frame)
    except CameraMotionError:
        return None

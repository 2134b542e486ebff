"""The structured caption of one clip (paper §5.1 "structured captions") and its record.

A caption has six text fields and an optional camera movement. `provenance` names, per field,
which backend wrote it (`endpoint:<model>`, `offline-facts`, `demo-ground-truth`,
`camera-motion-classifier`), so a training run can tell a VLM's words from measured facts.
Text fields are stripped and must be non-empty: a backend that has nothing honest to say about a
field writes an explicit "not measured" phrase rather than an empty string.
"""

from __future__ import annotations

import json
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from curation.camera_motion_classes import CameraMotion

TextField = Literal["short_description", "dense_description", "background", "style", "lighting", "atmosphere"]
CaptionField = TextField | Literal["camera_movement"]
TEXT_FIELDS: tuple[TextField, ...] = get_args(TextField)
CAPTION_FIELDS: tuple[CaptionField, ...] = (*TEXT_FIELDS, "camera_movement")


class CaptionText(BaseModel):
    """The six text fields, as a vision-language model must return them (JSON object)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    short_description: str = Field(
        min_length=1, max_length=400, description="one sentence: the main subject and action"
    )
    dense_description: str = Field(
        min_length=1,
        max_length=4000,
        description="several sentences: subjects, actions, scene changes, camera",
    )
    background: str = Field(min_length=1, max_length=1000, description="the environment behind the subject")
    style: str = Field(min_length=1, max_length=300, description="shot type / genre, e.g. aerial, close-up")
    lighting: str = Field(
        min_length=1, max_length=300, description="light level, contrast, colour temperature"
    )
    atmosphere: str = Field(min_length=1, max_length=300, description="mood of the scene")


class StructuredCaption(CaptionText):
    """A validated caption: the text fields, the camera movement (confident labels only) and provenance."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    camera_movement: CameraMotion | None = Field(
        default=None, description="one of the 14 classes, set only when the classifier was confident"
    )
    camera_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    provenance: dict[CaptionField, str] = Field(description="field → backend that wrote it")

    @field_validator("provenance")
    @classmethod
    def _backends_named(cls, value: dict[str, str]) -> dict[str, str]:
        empty = [name for name, backend in value.items() if not backend.strip()]
        if empty:
            raise ValueError(f"provenance has empty backend names for {empty}")
        return value

    @model_validator(mode="after")
    def _provenance_covers_fields(self) -> StructuredCaption:
        missing: list[str] = [name for name in TEXT_FIELDS if name not in self.provenance]
        if self.camera_movement is not None and "camera_movement" not in self.provenance:
            missing.append("camera_movement")
        if missing:
            raise ValueError(f"provenance does not name the backend of {missing}")
        if self.camera_movement is None and self.camera_confidence is not None:
            raise ValueError("camera_confidence given without camera_movement")
        return self

    def to_json(self) -> str:
        """Compact, key-sorted JSON (the `caption_json` column of the captions table)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


CaptionStatus = Literal["ok", "repaired", "failed"]


class CaptionRecord(BaseModel):
    """One row of the captions table: a caption, or a recorded failure (never an empty caption)."""

    model_config = ConfigDict(extra="forbid")

    clip_id: str
    backend: str
    status: CaptionStatus = Field(description="ok, repaired (JSON fixed up before validation) or failed")
    attempts: int = Field(ge=1)
    caption: StructuredCaption | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _caption_or_error(self) -> CaptionRecord:
        if self.status == "failed" and (self.caption is not None or not self.error):
            raise ValueError("a failed record carries an error and no caption")
        if self.status != "failed" and self.caption is None:
            raise ValueError(f"status {self.status!r} needs a caption")
        return self

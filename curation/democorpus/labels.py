"""The schema of the demo corpus's `labels.json` (version 1): the ground truth per video and shot.

Frame indices are 0-based positions in decode order; ranges are half-open `[start, end)`. A cut
is the index of the first frame of a new shot. Boxes are `(x0, y0, x1, y1)` in pixels of the full
frame, half-open. Ratios are fractions of the full frame area in [0, 1].

`labels.json` looks like::

    {"schema_version": 1, "seed": 0, "profile": "tiny", "definitions": {...},
     "videos": [{"video_id": "003_long", "file": "003_long.mp4", "kind": "long", "fps": 25.0,
                 "width": 640, "height": 360, "frame_count": 240, "cuts": [80, 150],
                 "cuts_known": true, "duplicate_of": null, "duplicate_kind": null,
                 "shots": [{"shot_id": "003_long#0", "start_frame": 0, "end_frame": 80,
                            "camera_motion": "pan left", ...}, ...]}, ...]}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from curation.camera_motion_classes import CameraMotion

SCHEMA_VERSION = 1
TEXT_HEAVY_RATIO = 0.05
"""A shot is text-heavy when its burnt-in text boxes cover at least this fraction of the frame."""
SLOW_MOTION_MAX_PX_PER_FRAME_256P = 0.15
"""Slow-motion shots move at most this many px/frame at 256p; moving shots at least 0.8."""

VideoKind = Literal["single", "long", "real", "duplicate"]
DuplicateKind = Literal["exact", "reencoded", "resized", "trimmed"]
BorderKind = Literal["none", "letterbox", "pillarbox"]


class ShotLabel(BaseModel):
    """Ground truth for one shot. Fields are `None` where the truth is unknown (real footage)."""

    model_config = ConfigDict(extra="forbid")

    shot_id: str = Field(description="`<video_id>#<index>`, stable for a seed")
    start_frame: int = Field(ge=0, description="first frame of the shot")
    end_frame: int = Field(gt=0, description="one past the last frame")
    camera_motion: CameraMotion | None = Field(description="one of the 14 classes; None if unknown")
    static: bool | None = Field(description="no camera motion at all")
    slow_motion: bool | None = Field(description="moves, but below the slow-motion speed")
    motion_px_per_frame_256p: float | None = Field(description="true mean pixel speed at 256p")
    text_area_ratio: float | None = Field(description="burnt-in text line boxes / frame area")
    text_heavy: bool | None = Field(description=f"text_area_ratio >= {TEXT_HEAVY_RATIO}")
    text_boxes: list[tuple[int, int, int, int]] = Field(default_factory=list)
    watermark: bool | None
    watermark_box: tuple[int, int, int, int] | None = None
    border: BorderKind | None
    content_box: tuple[int, int, int, int] | None = Field(description="the picture inside the bars")
    border_ratio: float | None = Field(description="bar area / frame area")
    source_image: str | None = Field(description="pool name of the photo the shot is rendered over")
    duplicate_of: str | None = Field(default=None, description="shot_id this shot was copied from")

    @classmethod
    def unknown(cls, shot_id: str, start_frame: int, end_frame: int) -> ShotLabel:
        """A shot whose truth nobody knows (real footage): every label None."""
        unknown_fields = {
            name
            for name, field in cls.model_fields.items()
            if field.is_required() and name not in ("shot_id", "start_frame", "end_frame")
        }
        return cls(
            shot_id=shot_id,
            start_frame=start_frame,
            end_frame=end_frame,
            **dict.fromkeys(unknown_fields),
        )


class VideoLabel(BaseModel):
    """Ground truth for one video file of the corpus."""

    model_config = ConfigDict(extra="forbid")

    video_id: str
    file: str = Field(description="file name relative to the corpus folder")
    kind: VideoKind
    fps: float
    width: int
    height: int
    frame_count: int
    cuts: list[int] = Field(description="first frame of every shot after the first")
    cuts_known: bool = Field(description="False for real footage whose cuts nobody labelled")
    duplicate_of: str | None = Field(default=None, description="video_id this video derives from")
    duplicate_kind: DuplicateKind | None = None
    source_media: str | None = Field(default=None, description="packaged real video it came from")
    shots: list[ShotLabel]


class CorpusLabels(BaseModel):
    """The whole `labels.json`."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    seed: int
    profile: str
    definitions: dict[str, str]
    videos: list[VideoLabel]

    def video(self, video_id: str) -> VideoLabel:
        """The label of `video_id`; KeyError names it when absent."""
        for video in self.videos:
            if video.video_id == video_id:
                return video
        raise KeyError(f"video {video_id!r} is not in the corpus labels")

    def shots(self) -> list[tuple[VideoLabel, ShotLabel]]:
        """Every (video, shot) pair in corpus order."""
        return [(video, shot) for video in self.videos for shot in video.shots]


class LabelsVersionError(ValueError):
    """`labels.json` was written by an incompatible generator version."""


def save_labels(labels: CorpusLabels, path: Path) -> None:
    """Write `labels.json` atomically (temp file + os.replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-labels-", suffix=".json", dir=path.parent)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(labels.model_dump_json(indent=1))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load_labels(path: Path) -> CorpusLabels:
    """Read and validate `labels.json`; raises `LabelsVersionError` on a schema mismatch."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise LabelsVersionError(
            f"{path}: labels schema_version {version}, this code reads {SCHEMA_VERSION}; "
            "regenerate the corpus with `videofoundry demo-corpus`"
        )
    return CorpusLabels.model_validate(raw)

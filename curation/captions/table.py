"""The captions table (Parquet): one row per clip, a caption or a recorded failure, and its check."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from pydantic import ValidationError
from tqdm import tqdm

from curation.captions.backends.base import CaptionBackend
from curation.captions.keyframes import ClipInput
from curation.captions.schema import CaptionRecord, StructuredCaption

CAPTIONS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("backend", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),  # ok | repaired | failed
        pa.field("attempts", pa.int32(), nullable=False),
        pa.field("caption_json", pa.string()),  # StructuredCaption.to_json(); null when failed
        pa.field("short_description", pa.string()),
        pa.field("camera_movement", pa.string()),  # null unless the label was confident
        pa.field("camera_confidence", pa.float64()),
        pa.field("error", pa.string()),  # every attempt's reason when failed
    ]
)


def caption_clips(
    clips: Iterable[ClipInput], backend: CaptionBackend, progress: bool = True
) -> list[CaptionRecord]:
    """Caption every clip with `backend`, in order; failures are records, not exceptions."""
    clips = list(clips)
    return [backend.caption(clip) for clip in tqdm(clips, desc="captions", unit="clip", disable=not progress)]


def records_to_table(records: list[CaptionRecord]) -> pa.Table:
    """The records as a table with `CAPTIONS_SCHEMA`."""
    rows = {name: [] for name in CAPTIONS_SCHEMA.names}  # type: dict[str, list[object]]
    for record in records:
        caption = record.caption
        rows["clip_id"].append(record.clip_id)
        rows["backend"].append(record.backend)
        rows["status"].append(record.status)
        rows["attempts"].append(record.attempts)
        rows["caption_json"].append(caption.to_json() if caption else None)
        rows["short_description"].append(caption.short_description if caption else None)
        rows["camera_movement"].append(caption.camera_movement if caption else None)
        rows["camera_confidence"].append(caption.camera_confidence if caption else None)
        rows["error"].append(record.error)
    return pa.table(rows, schema=CAPTIONS_SCHEMA)


def caption_problems(table: pa.Table, clip_ids: Iterable[str]) -> list[str]:
    """Why the table does not give every clip in `clip_ids` a valid caption (empty list: all good).

    A clip is missing, failed, duplicated, or its `caption_json` does not validate as a
    `StructuredCaption`.
    """
    problems: list[str] = []
    by_id: dict[str, list[dict[str, object]]] = {}
    for row in table.to_pylist():
        by_id.setdefault(str(row["clip_id"]), []).append(row)
    for clip_id in clip_ids:
        rows = by_id.get(clip_id, [])
        if not rows:
            problems.append(f"{clip_id}: no caption row")
            continue
        if len(rows) > 1:
            problems.append(f"{clip_id}: {len(rows)} caption rows")
        row = rows[0]
        if row["status"] == "failed" or row["caption_json"] is None:
            problems.append(f"{clip_id}: caption failed ({row['error']})")
            continue
        try:
            StructuredCaption.model_validate_json(str(row["caption_json"]))
        except ValidationError as error:
            problems.append(f"{clip_id}: invalid caption ({error.errors()[0]['msg']})")
    return problems

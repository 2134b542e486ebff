"""JSON clip lists for the latent cache (demos, tests, `videofoundry train-dit --clips`).

A clip list is a JSON list of {clip_id, video_path, start_frame, end_frame, prompt, weight?}.
Clip lists joined from the curation tables are built outside `training` (which may not import
curation): `orchestration.workspace_training.records_from_tables`.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.dit.latent_cache import ClipRecord


class ClipListError(ValueError):
    """A clip list (tables or JSON) is missing or malformed; the message names it."""


def load_clip_list(path: Path) -> list[ClipRecord]:
    """A JSON list of {clip_id, video_path, start_frame, end_frame, prompt, weight?}; paths relative to the file."""
    try:
        items = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ClipListError(f"clip list {path}: cannot read JSON ({err})") from err
    if not isinstance(items, list) or not items:
        raise ClipListError(f"clip list {path}: expected a non-empty JSON list of clip objects")
    records = []
    for index, item in enumerate(items):
        try:
            video = Path(item["video_path"])
            records.append(
                ClipRecord(
                    str(item["clip_id"]),
                    video if video.is_absolute() else Path(path).parent / video,
                    int(item["start_frame"]),
                    int(item["end_frame"]),
                    str(item["prompt"]),
                    float(item.get("weight", 1.0)),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ClipListError(f"clip list {path}: item {index} is malformed ({err})") from err
    return records


def save_clip_list(records: list[ClipRecord], path: Path) -> Path:
    """Write `records` as the JSON list `load_clip_list` reads (absolute video paths)."""
    data = [
        {
            "clip_id": r.clip_id,
            "video_path": str(Path(r.video_path).resolve()),
            "start_frame": r.start_frame,
            "end_frame": r.end_frame,
            "prompt": r.prompt,
            "weight": r.weight,
        }
        for r in records
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path

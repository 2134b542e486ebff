"""Clip lists for the latent cache: from the workspace tables, or from a JSON list (demos, tests).

`records_from_tables` joins, per clip: `clips` (source video, frame range), `tiers` (membership of
the stage's tier), `deduped_clips` (kept clips and their `balance_weight`) and `captions` (the
training prompt, rendered from the structured caption; failed captions are left out). The SFT
stage's `sft_set` is the clips of the `sft_set` table (people's accepted clips, written by the
`sft_set` asset) or the ids the caller passes.

One prompt per clip is cached (rendered with epoch 0 of `training.dit.prompts.render_for_clip`, so it
is stable);
caching several field-dropout renderings per clip is not done yet.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path

import numpy as np

from media.tables import read_table, table_path
from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import ClipRecord, read_clip, resize_crop
from training.dit.prompts import parse_caption, render_for_clip


class ClipListError(ValueError):
    """A clip list (tables or JSON) is missing or malformed; the message names it."""


def _table_rows(tables: Path, name: str) -> list[dict]:
    path = table_path(tables, name)
    if not path.exists():
        raise ClipListError(f"table {name} not found under {tables}; materialize the `{name}` asset first")
    return read_table(path).to_pylist()


def _tier_members(tables: Path, tier: str) -> set[str]:
    """Clip ids of `tier`, a `tier_*` column of the tiers table (which alone names the tiers)."""
    rows = _table_rows(tables, "tiers")
    tiers = [name for name in (rows[0] if rows else {}) if name.startswith("tier_")]
    if rows and tier not in tiers:
        raise ClipListError(f"unknown data key {tier!r}; use one of {', '.join(tiers)} or sft_set")
    return {r["clip_id"] for r in rows if r[tier]}


def records_from_tables(
    tables: Path, data: str, sft_clip_ids: Collection[str] | None = None
) -> list[ClipRecord]:
    """ClipRecords of `data` (a tier key or ``sft_set``) from the workspace tables (see module docstring)."""
    if data == "sft_set":
        if sft_clip_ids is None:
            sft_clip_ids = [r["clip_id"] for r in _table_rows(tables, "sft_set")]
        # The SFT set is people's choice among top-tier candidates: membership is the choice itself.
        in_tier = set(sft_clip_ids)
    else:
        in_tier = _tier_members(tables, data)
    weights = {
        r["clip_id"]: (r["balance_weight"] or 1.0) for r in _table_rows(tables, "deduped_clips") if r["keep"]
    }
    prompts = {}
    for row in _table_rows(tables, "captions"):
        if row["status"] != "failed" and row["caption_json"]:
            prompts[row["clip_id"]] = render_for_clip(
                parse_caption(row["caption_json"]), row["clip_id"], epoch=0
            )
    records = []
    for clip in _table_rows(tables, "clips"):
        clip_id = clip["clip_id"]
        if clip_id not in in_tier or clip_id not in weights or clip_id not in prompts:
            continue
        records.append(
            ClipRecord(
                clip_id,
                Path(clip["source_path"]),
                int(clip["start_frame"]),
                int(clip["end_frame"]),
                prompts[clip_id],
                float(weights[clip_id]),
            )
        )
    # By clip id: the clips table's row order is the order Ray's curation workers finished in, so
    # it differs between runs (the SFT recall's "first clips" did).
    return sorted(records, key=lambda record: record.clip_id)


def frames_as_trained(record: ClipRecord, config: DiTTrainConfig, stage: str = "sft") -> np.ndarray:
    """The clip's frames as `stage` trains on them: (F, H, W, 3) uint8 of its video bucket at the
    stage's first resolution (longest frame bucket that fits, nearest aspect, cover-and-crop), the
    very pixels the latent cache encodes (`training.dit.latent_cache.read_clip`)."""
    spec = config.stage(stage)
    if not spec.frame_buckets:
        raise ClipListError(f"stage {stage} trains on images only; it has no clip frames to show")
    frames, buckets = read_clip(record, spec, config.aspect_ratios)
    video = [b for b in buckets if not b.is_image and b.resolution == spec.resolutions[0]]
    if not video:
        available = record.end_frame - record.start_frame
        raise ClipListError(f"clip {record.clip_id}: {available} frames fit none of {spec.frame_buckets}")
    return resize_crop(frames[: video[0].frames], *video[0].size)


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

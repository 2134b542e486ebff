"""A picture of what deduplication decided: each duplicate group's kept clip beside its duplicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from media.video import VideoReader

TILE_HEIGHT = 72
MAX_GROUPS = 6
MAX_DUPLICATES = 4


def _frame(source: str, index: int, height: int) -> np.ndarray:
    with VideoReader(source) as reader:
        width, source_height = reader.size
        index = min(max(index, 0), reader.frame_count - 1)
        size = (max(1, round(width * height / source_height)), height)
        return reader.read(index, index + 1, size)[0]


def duplicate_gallery(deduped: pa.Table, clips: pa.Table, out: Path) -> Path | None:
    """One row per duplicate group (the largest `MAX_GROUPS`): the kept clip's sharpest frame with
    a frame border, then up to `MAX_DUPLICATES` of its duplicates, written to `out` (PNG); None
    when no clip has a duplicate. `deduped` follows DEDUPED_CLIPS_SCHEMA, `clips` CLIPS_SCHEMA."""
    rows = deduped.to_pylist()
    groups: dict[str, list[str]] = {}
    for row in rows:
        if not row["keep"] and row["duplicate_of"]:
            groups.setdefault(row["duplicate_of"], []).append(row["clip_id"])
    if not groups:
        return None
    where = {c["clip_id"]: (c["source_path"], c["start_frame_sharpest"]) for c in clips.to_pylist()}
    biggest = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))[:MAX_GROUPS]
    strips = []
    for kept, duplicates in biggest:
        members = [kept, *sorted(duplicates)[:MAX_DUPLICATES]]
        tiles = [_frame(*where[m], TILE_HEIGHT) for m in members if m in where]
        if tiles:
            tiles[0] = np.pad(tiles[0][3:-3, 3:-3], ((3, 3), (3, 3), (0, 0)), constant_values=255)
            strips.append(np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0))) for t in tiles], axis=1))
    if not strips:
        return None
    width = max(strip.shape[1] for strip in strips)
    canvas = np.zeros((len(strips) * (TILE_HEIGHT + 4), width, 3), dtype=np.uint8)
    for i, strip in enumerate(strips):
        canvas[i * (TILE_HEIGHT + 4) : i * (TILE_HEIGHT + 4) + TILE_HEIGHT, : strip.shape[1]] = strip
    image = Image.fromarray(canvas)
    ImageDraw.Draw(image).text((4, 2), "kept | duplicates", fill=(255, 255, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    image.save(tmp)
    tmp.replace(out)
    return out

"""The duplicate gallery of `deduped_clips`: one row per group, the kept clip first, real frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from curation.dedup_gallery import TILE_HEIGHT, duplicate_gallery
from media.video import write_video


def _clip_rows(videos: dict[str, Path]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"clip_id": cid, "source_path": str(path), "start_frame_sharpest": 2}
            for cid, path in videos.items()
        ]
    )


def test_groups_are_rows_with_the_kept_clip_first(tmp_path: Path) -> None:
    colours = {
        "a": (220, 30, 30),
        "a2": (210, 40, 40),
        "b": (30, 30, 220),
        "b2": (40, 40, 210),
        "b3": (35, 35, 200),
        "c": (30, 200, 30),
    }
    videos = {}
    for cid, colour in colours.items():
        videos[cid] = tmp_path / f"{cid}.mp4"
        write_video(videos[cid], [np.full((64, 96, 3), colour, np.uint8)] * 5, fps=8)
    deduped = pa.Table.from_pylist([
        {"clip_id": "a", "keep": True, "duplicate_of": None}, {"clip_id": "a2", "keep": False, "duplicate_of": "a"},
        {"clip_id": "b", "keep": True, "duplicate_of": None}, {"clip_id": "b2", "keep": False, "duplicate_of": "b"},
        {"clip_id": "b3", "keep": False, "duplicate_of": "b"}, {"clip_id": "c", "keep": True, "duplicate_of": None},
    ])  # fmt: skip
    out = duplicate_gallery(deduped, _clip_rows(videos), tmp_path / "gallery.png")
    assert out is not None
    image = np.asarray(Image.open(out).convert("RGB")).astype(int)
    tile_w = round(96 * TILE_HEIGHT / 64)
    assert image.shape == (2 * (TILE_HEIGHT + 4), 3 * (tile_w + 4), 3)  # b's group (3 clips) first, then a's
    middle = TILE_HEIGHT // 2
    first_row = [image[middle, i * (tile_w + 4) + tile_w // 2] for i in range(3)]
    assert all(px[2] > 150 and px[0] < 90 for px in first_row)  # blue: b, b2, b3
    assert (image[1, 2] == 255).all() or image[1, 2].min() > 200  # the kept tile's white frame
    second = image[TILE_HEIGHT + 4 + middle, tile_w // 2]
    assert second[0] > 150 and second[2] < 90  # red: a
    assert (
        image[TILE_HEIGHT + 4 + middle, 2 * (tile_w + 4) + tile_w // 2] == 0
    ).all()  # a has one duplicate only


def test_no_duplicates_no_gallery(tmp_path: Path) -> None:
    deduped = pa.Table.from_pylist([{"clip_id": "a", "keep": True, "duplicate_of": None}])
    assert duplicate_gallery(deduped, _clip_rows({}), tmp_path / "g.png") is None
    assert not (tmp_path / "g.png").exists()

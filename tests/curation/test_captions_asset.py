"""The `captions` asset and its check, materialized with Dagster over a small tiers/clips table."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import dagster as dg
import pyarrow as pa
import skimage

from assets.captions import captions, every_tier_clip_has_a_valid_caption
from curation.schemas import CLIPS_SCHEMA, TIERS_SCHEMA
from media.tables import read_table, write_table
from media.video import write_video
from orchestration.resources import VersioningResource, WorkspaceResource


def _write_video(path: Path, n: int = 30) -> None:
    photo = cv2.cvtColor(
        cv2.imread(str(Path(skimage.__file__).parent / "data" / "coffee.png")), cv2.COLOR_BGR2RGB
    )
    write_video(path, [photo[100:244, 40 + 3 * t : 296 + 3 * t] for t in range(n)], 24)


def test_captions_asset_and_check(tmp_path):
    home = tmp_path / "home"
    _write_video(home / "raw" / "batch" / "coffee.mp4")
    raw_video = str(home / "raw" / "batch" / "coffee.mp4")

    def clip_row(clip_id: str, source: str, start: int, end: int) -> dict:
        return {
            "clip_id": clip_id, "batch": "batch", "source_path": source, "source_sha256": "0" * 64,
            "shot_index": 0, "piece_index": 0, "start_frame": start, "end_frame": end,
            "start_time": start / 24, "end_time": end / 24, "fps": 24.0, "width": 256, "height": 144,
            "frame_count": end - start, "start_frame_sharpest": start,
        }  # fmt: skip

    rows = [
        clip_row("a", raw_video, 0, 15),
        clip_row("b", raw_video, 15, 30),
        clip_row("c", str(home / "raw" / "batch" / "missing.mp4"), 0, 10),
    ]
    write_table(pa.Table.from_pylist(rows, schema=CLIPS_SCHEMA), home / "tables" / "clips" / "batch.parquet")

    def tiers(*members: tuple[str, bool]) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {"clip_id": c, "highest_tier": "256p", "tier_256p": m, "tier_360p": False, "tier_540p": False,
                 "tier_720p": False, "failed_tier": "360p", "failed_filter": "aesthetic"}
                for c, m in members
            ],
            schema=TIERS_SCHEMA,
        )  # fmt: skip

    write_table(tiers(("a", True), ("b", True)), home / "tables" / "tiers.parquet")
    resources = {
        "workspace": WorkspaceResource(home=str(home), profile="tiny"),
        "versioning": VersioningResource(root=str(home), dvc_remote=str(home / "dvc-remote")),
    }
    result = dg.materialize([captions, every_tier_clip_has_a_valid_caption], resources=resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]
    (event,) = result.get_asset_materialization_events()
    version = event.materialization.metadata["data_version"].value
    assert version.startswith("dvc:tables/captions.parquet@")  # committed to the version store
    table = read_table(home / "tables" / "captions.parquet").to_pylist()
    assert [row["clip_id"] for row in table] == ["a", "b"]  # clip c is in no tier
    assert {row["status"] for row in table} == {"ok"}
    caption = json.loads(table[0]["caption_json"])
    assert caption["camera_movement"] == "pan right"
    assert caption["provenance"]["lighting"] == "offline-facts"

    # A tier clip whose video is gone is recorded as failed, and the check then fails.
    write_table(tiers(("a", True), ("c", True), ("b", False)), home / "tables" / "tiers.parquet")
    result = dg.materialize(
        [captions, every_tier_clip_has_a_valid_caption], resources=resources, raise_on_error=False
    )
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert "c: caption failed" in check.metadata["problems"].value
    rows = read_table(home / "tables" / "captions.parquet").to_pylist()
    assert [(row["clip_id"], row["status"]) for row in rows] == [("a", "ok"), ("c", "failed")]
    assert "missing.mp4: no such video file" in rows[1]["error"]

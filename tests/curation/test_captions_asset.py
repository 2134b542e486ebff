"""The `captions` asset and its check, materialized with Dagster over a small tiers/clips table."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import dagster as dg
import numpy as np
import pyarrow as pa
import skimage

from assets.captions import captions, every_tier_clip_has_a_valid_caption
from curation.tables import read_table, write_table
from orchestration.resources import WorkspaceResource


def _write_video(path: Path, n: int = 30) -> None:
    photo = cv2.cvtColor(
        cv2.imread(str(Path(skimage.__file__).parent / "data" / "coffee.png")), cv2.COLOR_BGR2RGB
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
        for t in range(n):
            frame = np.ascontiguousarray(photo[100:244, 40 + 3 * t : 296 + 3 * t])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_captions_asset_and_check(tmp_path):
    home = tmp_path / "home"
    _write_video(home / "raw" / "batch" / "coffee.mp4")
    clips = pa.table(
        {
            "clip_id": ["a", "b", "c"],
            "source_path": ["batch/coffee.mp4", "batch/coffee.mp4", "batch/missing.mp4"],
            "start_frame": [0, 15, 0],
            "end_frame": [15, 30, 10],
        }
    )
    write_table(clips, home / "tables" / "clips.parquet")
    write_table(
        pa.table({"clip_id": ["a", "b"], "tier": ["256p", "256p"]}), home / "tables" / "tiers.parquet"
    )
    resources = {"workspace": WorkspaceResource(home=str(home), profile="tiny")}
    result = dg.materialize([captions, every_tier_clip_has_a_valid_caption], resources=resources)
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [True]
    table = read_table(home / "tables" / "captions.parquet").to_pylist()
    assert [row["clip_id"] for row in table] == ["a", "b"]  # clip c is in no tier
    assert {row["status"] for row in table} == {"ok"}
    caption = json.loads(table[0]["caption_json"])
    assert caption["camera_movement"] == "pan right"
    assert caption["provenance"]["lighting"] == "offline-facts"

    # A tier clip whose video is gone is recorded as failed, and the check then fails.
    write_table(
        pa.table({"clip_id": ["a", "c"], "tier": ["256p", "256p"]}), home / "tables" / "tiers.parquet"
    )
    result = dg.materialize(
        [captions, every_tier_clip_has_a_valid_caption], resources=resources, raise_on_error=False
    )
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert "c: caption failed" in check.metadata["problems"].value

"""Blocking checks on the tables: tier nesting and the clips suite decide on real tables."""

import pandas as pd
import pyarrow as pa

from assets.quality_checks import clips_expectations, nesting_violations, tiers_expectations
from curation.schemas import CLIPS_SCHEMA, TIERS_SCHEMA
from media.tables import write_table
from orchestration.resources import WorkspaceResource


def _tiers(rows):
    columns = {name: [row[i] for row in rows] for i, name in enumerate(TIERS_SCHEMA.names)}
    return pa.table(columns, schema=TIERS_SCHEMA)


def test_nesting_violations_are_counted_per_tier_pair():
    frame = pd.DataFrame(
        {
            "tier_256p": [True, True, False],
            "tier_360p": [True, False, False],
            "tier_540p": [False, True, False],
        }
        | {"tier_720p": [False, False, True]}
    )
    assert nesting_violations(frame) == {"360p⊄256p": 0, "540p⊄360p": 1, "720p⊄540p": 1}


def test_tiers_check_fails_when_a_720p_clip_is_missing_from_540p(tmp_path):
    workspace = WorkspaceResource(home=str(tmp_path), profile="tiny")
    good = [
        ("a", "720p", True, True, True, True, None, None),
        ("b", "256p", True, False, False, False, "360p", "blur"),
    ]
    write_table(_tiers(good), workspace.workspace.table("tiers"), TIERS_SCHEMA)
    assert tiers_expectations(workspace=workspace).passed

    bad = [*good[:1], ("c", "720p", True, True, False, True, None, None)]
    write_table(_tiers(bad), workspace.workspace.table("tiers"), TIERS_SCHEMA)
    result = tiers_expectations(workspace=workspace)
    assert not result.passed
    assert "720p⊄540p': 1" in result.description


def test_clips_check_rejects_duplicate_ids(tmp_path):
    workspace = WorkspaceResource(home=str(tmp_path), profile="tiny")
    row = {
        "clip_id": "x", "batch": "b", "source_path": "/v.mp4", "source_sha256": "0" * 64, "shot_index": 0,
        "piece_index": 0, "start_frame": 0, "end_frame": 48, "start_time": 0.0, "end_time": 2.0, "fps": 24.0,
        "width": 640, "height": 360, "frame_count": 48, "start_frame_sharpest": 3,
    }  # fmt: skip
    write_table(
        pa.Table.from_pylist([row, row], schema=CLIPS_SCHEMA),
        workspace.workspace.tables / "clips" / "b.parquet",
    )
    result = clips_expectations(workspace=workspace)
    assert not result.passed and "expect_column_values_to_be_unique" in result.description

"""Clip lists from the curation tables, the Dagster assets `latents` → `dit_image_256`, and the CLI (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest
import torch
from typer.testing import CliRunner

from curation.captions import CAPTIONS_SCHEMA
from curation.captions.schema import StructuredCaption
from curation.schemas import CLIPS_SCHEMA, DEDUPED_CLIPS_SCHEMA, TIERS_SCHEMA
from media.tables import read_table, write_table
from orchestration.workspace_training import records_from_tables
from tests.training.dit.fixtures import CLIP_SPECS, write_clips
from training.dit.config import STAGE_ORDER
from training.dit.records import ClipListError

pytestmark = pytest.mark.slow
FIELDS = ("short_description", "dense_description", "background", "style", "lighting", "atmosphere")


def _write_tables(home: Path) -> list[str]:
    """Four clips: yellow_bar fails tier_360p, white_dot was dropped as a duplicate, green_disc's caption failed."""
    records = write_clips(home / "raw" / "batch0")
    tables = home / "tables"
    clips, tiers, deduped, captions = [], [], [], []
    for record, spec in zip(records, CLIP_SPECS, strict=False):
        clip_id = record.clip_id
        clips.append(
            {
                "clip_id": clip_id, "batch": "batch0", "source_path": str(record.video_path),
                "source_sha256": "0" * 64, "shot_index": 0, "piece_index": 0, "start_frame": 0,
                "end_frame": 12, "start_time": 0.0, "end_time": 1.5, "fps": 8.0, "width": 80, "height": 48,
                "frame_count": 12, "start_frame_sharpest": 0,
            }
        )  # fmt: skip
        tiers.append(
            {
                "clip_id": clip_id, "highest_tier": "720p", "tier_256p": True,
                "tier_360p": clip_id != "yellow_bar", "tier_540p": clip_id != "yellow_bar",
                "tier_720p": clip_id != "yellow_bar", "failed_tier": None, "failed_filter": None,
            }
        )  # fmt: skip
        keep = clip_id != "white_dot"
        deduped.append(
            {
                "clip_id": clip_id, "keep": keep, "duplicate_of": None if keep else "red_square",
                "group_id": clip_id if keep else "red_square", "group_size": 1, "nearest_distance": 0.5,
                "cluster": 0 if keep else None, "balance_weight": 2.0 if clip_id == "red_square" else 1.0,
            }
        )  # fmt: skip
        caption = StructuredCaption(
            **{f: spec[3] if f == "short_description" else f"{f} of {clip_id}" for f in FIELDS},
            provenance=dict.fromkeys(FIELDS, "test"),
        )
        failed = clip_id == "green_disc"
        captions.append(
            {
                "clip_id": clip_id, "backend": "test", "status": "failed" if failed else "ok", "attempts": 1,
                "caption_json": None if failed else caption.to_json(), "short_description": spec[3],
                "camera_movement": None, "camera_confidence": None, "error": "x" if failed else None,
            }
        )  # fmt: skip
    write_table(pa.Table.from_pylist(clips, CLIPS_SCHEMA), tables / "clips.parquet", CLIPS_SCHEMA)
    write_table(pa.Table.from_pylist(tiers, TIERS_SCHEMA), tables / "tiers.parquet", TIERS_SCHEMA)
    write_table(
        pa.Table.from_pylist(deduped, DEDUPED_CLIPS_SCHEMA),
        tables / "deduped_clips.parquet",
        DEDUPED_CLIPS_SCHEMA,
    )
    write_table(pa.Table.from_pylist(captions, CAPTIONS_SCHEMA), tables / "captions.parquet", CAPTIONS_SCHEMA)
    sft = pa.table({"clip_id": ["red_square"], "video_path": [str(records[0].video_path)]})
    write_table(sft, tables / "sft_set.parquet")
    return [r.clip_id for r in records]


def test_records_come_in_clip_id_order_whatever_the_clips_table_order(tmp_path):
    _write_tables(tmp_path)
    clips = tmp_path / "tables" / "clips.parquet"
    table = read_table(clips)
    write_table(table.take(list(reversed(range(table.num_rows)))), clips, CLIPS_SCHEMA)
    assert [r.clip_id for r in records_from_tables(tmp_path / "tables", "tier_256p")] == [
        "red_square",
        "yellow_bar",
    ]


def test_records_join_tiers_balance_weights_and_captions(tmp_path):
    _write_tables(tmp_path)
    tier_256 = records_from_tables(tmp_path / "tables", "tier_256p")
    assert sorted(r.clip_id for r in tier_256) == [
        "red_square",
        "yellow_bar",
    ]  # duplicate + failed caption left out
    red = next(r for r in tier_256 if r.clip_id == "red_square")
    assert red.weight == 2.0 and red.video_path == tmp_path / "raw" / "batch0" / "red_square.mp4"
    assert "red square" in red.prompt and (red.start_frame, red.end_frame) == (0, 12)
    assert [r.clip_id for r in records_from_tables(tmp_path / "tables", "tier_720p")] == ["red_square"]
    assert [r.clip_id for r in records_from_tables(tmp_path / "tables", "sft_set")] == ["red_square"]
    with pytest.raises(ClipListError, match="unknown data key"):
        records_from_tables(tmp_path / "tables", "tier_1080p")


def test_assets_and_cli_run_the_first_stages_in_a_workspace(tmp_path, monkeypatch):
    from assets import dit
    from orchestration.cli import app
    from orchestration.config import load_config
    from orchestration.resources import build_resources

    torch.set_num_threads(1)
    home = tmp_path / "home"
    _write_tables(home)
    resources = build_resources(load_config("tiny", home=home))
    assert [a.key.path[0] for a in dit.stage_assets] == [f"dit_{s}" for s in STAGE_ORDER]
    selected = [dit.latents, dit.stage_assets[0]]
    result = dg.materialize(selected, resources=resources, selection=selected)
    assert result.success
    latents_meta = result.asset_materializations_for_node("latents")[0].metadata
    assert latents_meta["image_256_encoded"].value == 2 and latents_meta["video_low_short_buckets"].value
    stage_meta = result.asset_materializations_for_node("dit_image_256")[0].metadata
    assert stage_meta["steps"].value == 6 and stage_meta["model_version"].value == "1"
    assert stage_meta["data_version"].value.startswith("records:")  # no DVC commit of the tables yet

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cli = CliRunner().invoke(app, ["train-dit", "--stage", "image_mixscale", "--home", str(home)])
    assert cli.exit_code == 0, cli.output
    line = next(line for line in cli.output.splitlines() if '{"stage"' in line)
    summary = json.loads(line[line.index('{"stage"') :])
    assert summary["stage"] == "image_mixscale" and summary["model_version"] == "2"
    again = CliRunner().invoke(app, ["train-dit", "--stage", "image_mixscale", "--home", str(home)])
    assert again.exit_code == 0, again.output  # resume is the default: the checkpoints are kept
    assert "stage image_mixscale: resumed at step 4" in again.stderr  # INFO shows by default
    line = next(line for line in again.output.splitlines() if '{"stage"' in line)
    assert json.loads(line[line.index('{"stage"') :])["resumed_from"] == 4  # finished stage: nothing re-run
    bad = CliRunner().invoke(app, ["train-dit", "--stage", "sft", "--home", str(home)])
    # The stage order is bad input: one `error:` line, exit code 2.
    assert bad.exit_code == 2 and "train video_high_long first" in bad.stderr

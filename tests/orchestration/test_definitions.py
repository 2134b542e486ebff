"""The whole `Definitions` loads, and `raw_videos` materializes against a real Dagster instance."""

import os
import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from curation.ingest import sha256_of
from orchestration.config import load_config
from orchestration.definitions import build_definitions
from orchestration.runner import dagster_instance, run_lineage
from orchestration.workspace import Workspace

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def test_definitions_load_and_validate(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "")  # recorded, so the undo restores the outside value
    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF")
    defs = build_definitions(load_config(home=tmp_path, environ={}))
    # the assets' processes get the CUDA allocator default of the CLI (model.cuda_allocator)
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "raw_videos" in keys
    assert set(defs.resources) == {"workspace", "tracking", "compute", "human_eval", "versioning"}


def test_raw_videos_fingerprints_each_batch(tmp_path):
    config = load_config(home=tmp_path / "home", environ={})
    ws = Workspace.at(config.home).ensure()
    (ws.raw / "batch-1").mkdir()
    (ws.raw / "batch-2" / "sub dir").mkdir(parents=True)
    shutil.copy(VTEST, ws.raw / "batch-1" / "a.avi")
    shutil.copy(VTEST, ws.raw / "batch-2" / "sub dir" / "same content é.avi")
    (ws.raw / "batch-2" / "notes.txt").write_text("not a video")

    summary = run_lineage(build_definitions(config), config, select="key:raw_videos")
    assert summary.success
    assert sorted(p for _, p, _ in summary.runs) == ["batch-1", "batch-2"]

    table = pq.read_table(ws.tables / "raw_videos").to_pandas()
    assert sorted(table["relative_path"]) == ["a.avi", "notes.txt", "sub dir/same content é.avi"]
    videos = table[table["skip_reason"].isna()]
    assert set(videos["sha256"]) == {sha256_of(VTEST)}
    assert (videos["size_bytes"] == VTEST.stat().st_size).all()
    skipped = table[table["skip_reason"].notna()]
    assert list(skipped["relative_path"]) == ["notes.txt"] and skipped["sha256"].isna().all()

    instance = dagster_instance(ws)
    assert sorted(instance.get_dynamic_partitions("raw_batches")) == ["batch-1", "batch-2"]
    event = instance.get_latest_materialization_event(dg.AssetKey("raw_videos"))
    assert event is not None
    metadata = event.asset_materialization.metadata  # batch-2: one video and notes.txt skipped
    assert (metadata["rows"].value, metadata["skipped"].value) == (2, 1)

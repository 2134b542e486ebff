"""Sensors and schedules driven with Dagster's evaluation contexts and a real instance."""

import os
import shutil
import time
from pathlib import Path

import dagster as dg

from orchestration.automation import INGEST_JOB, batch_is_settled
from orchestration.config import load_config
from orchestration.definitions import build_definitions
from orchestration.runner import dagster_instance
from orchestration.workspace import Workspace

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def test_settled_means_marker_or_quiet_folder(tmp_path):
    batch = tmp_path / "b"
    batch.mkdir()
    assert not batch_is_settled(batch, 60)  # empty: nothing to ingest yet
    (batch / "v.mp4").write_bytes(b"x")
    assert not batch_is_settled(batch, 60)
    assert batch_is_settled(batch, 60, now=time.time() + 61)
    (batch / "_READY").touch()
    assert batch_is_settled(batch, 60)


def test_raw_batch_sensor_adds_partitions_and_requests_runs_once(tmp_path):
    config = load_config(home=tmp_path / "home", environ={})
    ws = Workspace.at(config.home).ensure()
    for name in ("2026-11-01", "2026-11-02", "incoming"):
        (ws.raw / name).mkdir()
        shutil.copy(VTEST, ws.raw / name / "v.avi")
    old = time.time() - 3600
    for name in ("2026-11-01", "2026-11-02"):
        os.utime(ws.raw / name / "v.avi", (old, old))
    defs = build_definitions(config)
    sensor = defs.resolve_sensor_def("raw_batch_sensor")
    instance = dagster_instance(ws)

    result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert sorted(r.partition_key for r in result.run_requests) == ["2026-11-01", "2026-11-02"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["2026-11-01", "2026-11-02"]

    instance.add_dynamic_partitions("raw_batches", ["2026-11-01", "2026-11-02"])
    again = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(again, dg.SkipReason)  # "incoming" is still being written

    (ws.raw / "incoming" / "_READY").touch()
    third = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert [r.partition_key for r in third.run_requests] == ["incoming"]
    assert defs.resolve_job_def(INGEST_JOB).partitions_def.name == "raw_batches"

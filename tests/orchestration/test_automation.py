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


def test_promotion_sensor_waits_for_the_campaign_then_requests_champion(tmp_path):
    from evaluation.human_eval import HumanEvalConfig, ModelSpec
    from tests.evaluation.campaigns import rate_everything, synthetic_campaign

    config = load_config(home=tmp_path / "home", environ={})
    ws = Workspace.at(config.home).ensure()
    defs = build_definitions(config)
    instance = dagster_instance(ws)
    sensor = defs.resolve_sensor_def("human_eval_promotion_sensor")
    assert isinstance(sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)

    db = f"sqlite:///{ws.human_eval_db}"
    he = HumanEvalConfig.preset(
        "tiny", db_url=db, gold_fraction=0.0, duplicate_fraction=0.0, raters_per_pair=1
    )
    models = [
        ModelSpec("candidate", "models:/videofoundry-dit/2"),
        ModelSpec("baseline", "models:/videofoundry-dit/1"),
    ]
    synthetic_campaign(he, "sft-v2-vs-v1", models, tmp_path / "v", ["ann"])
    instance.report_runless_asset_event(
        dg.AssetMaterialization("human_eval", metadata={"campaign": "sft-v2-vs-v1"})
    )
    waiting = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(waiting, dg.SkipReason) and "0/2 rated" in waiting.skip_message

    assert rate_everything(he, "left") == 2
    request = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "promote-sft-v2-vs-v1"
    # The request carries no selection of its own: the sensor's target (champion) runs.
    assert request.asset_selection is None
    assert sensor.asset_selection.resolve(defs.resolve_asset_graph()) == {dg.AssetKey("champion")}


def test_schedules_target_the_sft_stage_and_recuration(tmp_path):
    defs = build_definitions(load_config(home=tmp_path / "home", environ={}))
    retrain = defs.resolve_schedule_def("sft_retrain_weekly")
    assert retrain.cron_schedule == "0 3 * * 1"
    graph = defs.resolve_asset_graph()
    selected = defs.resolve_job_def("sft_retrain").asset_layer.selected_asset_keys
    names = {k.to_user_string() for k in selected}
    assert {"dit_sft", "generations", "human_eval", "champion"} <= names and "sft_set" not in names
    recurate = {
        k.to_user_string() for k in defs.resolve_job_def("recuration").asset_layer.selected_asset_keys
    }
    assert recurate == {"deduped_clips", "tiers", "sft_candidates", "captions"}
    assert graph.get(dg.AssetKey("tiers")).partitions_def is None

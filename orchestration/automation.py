"""Jobs, schedules and sensors: what makes the lineage run without a person pressing a button.

- `raw_batch_sensor`: a new folder under `raw/` that has settled (a `_READY` marker, or no file
  changed for `settle_seconds`) becomes a `raw_batches` partition, and a run of the per-batch
  curation assets is requested for it.
- `sft_retrain_schedule`: periodic retraining of the SFT stage (and what depends on it).
- `human_eval_promotion_sensor`: when a human-eval campaign completes, the promotion job runs.
The jobs are built from the assets that exist, so the automation follows the lineage as it grows.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from assets.partitions import raw_batches
from curation.ingest import list_batches

READY_MARKER = "_READY"
INGEST_JOB = "ingest_batch"


def batch_is_settled(batch_dir: Path, settle_seconds: float, now: float | None = None) -> bool:
    """True when the batch says it is complete, or nothing in it changed for `settle_seconds`."""
    if (batch_dir / READY_MARKER).exists():
        return True
    now = time.time() if now is None else now
    newest = max((p.stat().st_mtime for p in batch_dir.rglob("*") if p.is_file()), default=None)
    return newest is not None and now - newest >= settle_seconds


def partitioned_asset_keys(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetKey]:
    """Keys of the assets partitioned by raw batch (those an ingest run materializes)."""
    keys: list[dg.AssetKey] = []
    for definition in assets:
        if definition.partitions_def == raw_batches:
            keys.extend(definition.keys)
    return sorted(keys)


def build_ingest_job(assets: Sequence[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*partitioned_asset_keys(assets)),
        partitions_def=raw_batches,
        description="Per-batch curation of one raw ingest batch.",
    )


def build_raw_batch_sensor(raw_dir: Path, settle_seconds: float = 60.0) -> dg.SensorDefinition:
    @dg.sensor(
        name="raw_batch_sensor",
        job_name=INGEST_JOB,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Starts curation when a settled batch folder appears under {raw_dir}.",
    )
    def raw_batch_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        known = set(context.instance.get_dynamic_partitions(raw_batches.name or "raw_batches"))
        ready = [
            b
            for b in list_batches(raw_dir)
            if b not in known and batch_is_settled(raw_dir / b, settle_seconds)
        ]
        if not ready:
            return dg.SkipReason(f"no new settled batch under {raw_dir}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"ingest-{b}", partition_key=b) for b in ready],
            dynamic_partitions_requests=[raw_batches.build_add_request(ready)],
        )

    return raw_batch_sensor

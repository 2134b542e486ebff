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


PROMOTE_ASSET = dg.AssetKey("champion")
CAMPAIGN_ASSET = dg.AssetKey("human_eval")


def latest_campaign(instance: dg.DagsterInstance) -> str | None:
    """The campaign the latest `human_eval` materialization names; None before there is one."""
    event = instance.get_latest_materialization_event(CAMPAIGN_ASSET)
    materialization = event.asset_materialization if event else None
    if materialization is None or "campaign" not in materialization.metadata:
        return None
    return str(materialization.metadata["campaign"].value)


def build_promotion_sensor(human_eval_db: str) -> dg.SensorDefinition:
    """Re-materialize `champion` once the latest human-eval campaign has every assignment rated."""

    @dg.sensor(
        name="human_eval_promotion_sensor",
        asset_selection=[PROMOTE_ASSET],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Promotes (or records why not) when a human-eval campaign completes.",
    )
    def human_eval_promotion_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        from evaluation.human_eval import campaign_complete, campaign_progress, find_campaign

        name = latest_campaign(context.instance)
        if name is None:
            return dg.SkipReason("no human-eval campaign has been created yet")
        campaign_id = find_campaign(human_eval_db, name)
        if not campaign_complete(human_eval_db, campaign_id):
            progress = campaign_progress(human_eval_db, campaign_id)
            return dg.SkipReason(f"campaign {name}: {progress.rated}/{progress.assignments} rated")
        return dg.RunRequest(run_key=f"promote-{name}", tags={"videofoundry/campaign": name})

    return human_eval_promotion_sensor


def build_schedules(asset_keys: set[dg.AssetKey]) -> list[dg.ScheduleDefinition]:
    """Weekly SFT retraining (and its evaluation), nightly re-curation over all batches."""
    schedules = []
    if dg.AssetKey("dit_sft") in asset_keys:
        retrain = dg.define_asset_job(
            "sft_retrain",
            selection=dg.AssetSelection.assets("sft_set", "dit_sft").downstream()
            - dg.AssetSelection.assets("sft_set"),
            description="Retrain the SFT stage on the current sft_set, then evaluate it.",
        )
        schedules.append(
            dg.ScheduleDefinition(
                name="sft_retrain_weekly",
                job=retrain,
                cron_schedule="0 3 * * 1",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        )
    unpartitioned_curation = [
        k for k in ("deduped_clips", "tiers", "sft_candidates", "captions") if dg.AssetKey(k) in asset_keys
    ]
    if unpartitioned_curation:
        recurate = dg.define_asset_job(
            "recuration",
            selection=dg.AssetSelection.assets(*unpartitioned_curation),
            description="Rebuild dedup, tiers, SFT candidates and captions over every ingested batch.",
        )
        schedules.append(
            dg.ScheduleDefinition(
                name="recuration_nightly",
                job=recurate,
                cron_schedule="0 1 * * *",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        )
    return schedules

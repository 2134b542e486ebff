"""`clip_signals`: motion, clarity, quality, aesthetic stand-in, OCR text, watermark, borders, embedding."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.curation_config import curation_config
from assets.partitions import raw_batches
from curation.pipeline import compute_signals
from orchestration.resources import ComputeResource, WorkspaceResource


@versioned_asset(deps=["clips"], partitions_def=raw_batches, group_name="curation", kinds={"parquet", "ray"})
def clip_signals(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, compute: ComputeResource
) -> dg.MaterializeResult:
    """One row of signals per clip, from one decode of each raw video (Ray Data, written by the workers)."""
    ws = workspace.workspace
    batch = context.partition_key
    config = curation_config(workspace, compute)
    path = ws.table("clip_signals", batch)
    summary = compute_signals(ws.table("clips", batch), config, path, ws.quarantine / f"{batch}.parquet")
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(summary.rows["signal"]),
            "aesthetic_model": dg.MetadataValue.text(config.signals.aesthetic_model or "heuristic stand-in"),
            "path": dg.MetadataValue.path(str(path)),
        }
    )

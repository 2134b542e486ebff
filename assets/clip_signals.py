"""`clip_signals`: motion, clarity, quality, aesthetic stand-in, OCR text, watermark, borders, embedding."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.curation_config import curation_config
from assets.partitions import raw_batches
from curation.pipeline import compute_signals, upsert_quarantine
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA
from media.tables import read_table, write_table
from orchestration.resources import ComputeResource, WorkspaceResource


@versioned_asset(deps=["clips"], partitions_def=raw_batches, group_name="curation", kinds={"parquet", "ray"})
def clip_signals(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, compute: ComputeResource
) -> dg.MaterializeResult:
    """One row of signals per clip, from one decode of each raw video (Ray Data)."""
    ws = workspace.workspace
    batch = context.partition_key
    config = curation_config(workspace, compute)
    clips = read_table(ws.table("clips", batch), CLIPS_SCHEMA)
    table, quarantine = compute_signals(clips, config)
    path = write_table(table, ws.table("clip_signals", batch), CLIP_SIGNALS_SCHEMA)
    upsert_quarantine(ws.quarantine / f"{batch}.parquet", quarantine, {"signals"})
    models = set(table.column("aesthetic_model").to_pylist()) if table.num_rows else set()
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(table.num_rows),
            "aesthetic_model": dg.MetadataValue.text(", ".join(sorted(str(m) for m in models))),
            "path": dg.MetadataValue.path(str(path)),
        }
    )

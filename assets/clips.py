"""`clips`: PySceneDetect shots of each raw video, cut into clips (frame ranges), per ingest batch."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.curation_config import curation_config
from assets.partitions import raw_batches
from assets.versioned import commit_version
from curation.ingest import RAW_VIDEOS_SCHEMA
from curation.pipeline import make_clips
from media.tables import read_table
from orchestration.resources import ComputeResource, VersioningResource, WorkspaceResource


@versioned_asset(
    deps=["raw_videos"], partitions_def=raw_batches, group_name="curation", kinds={"parquet", "ray"}
)
def clips(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    compute: ComputeResource,
    versioning: VersioningResource,
) -> dg.MaterializeResult:
    """Single-shot clips (frame ranges into the raw files) with stable ids; bad inputs quarantined."""
    ws = workspace.workspace
    batch = context.partition_key
    config = curation_config(workspace, compute)
    raw = read_table(ws.table("raw_videos", batch), RAW_VIDEOS_SCHEMA)
    path = ws.table("clips", batch)
    summary = make_clips(raw, batch, config, path, ws.quarantine / f"{batch}.parquet")
    return dg.MaterializeResult(
        metadata={
            "clips": dg.MetadataValue.int(summary.rows["clip"]),
            "videos": dg.MetadataValue.int(summary.items),
            "quarantined": dg.MetadataValue.int(summary.rows["quarantine"]),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, ws.table("clips"), f"clips of batch {batch}"),
        }
    )

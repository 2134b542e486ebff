"""`deduped_clips`: embedding/phash near-duplicate groups (best clip kept), k-means clusters, weights."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.curation_config import curation_config
from assets.versioned import commit_version
from curation.dedup import dedup_clips
from curation.dedup_gallery import duplicate_gallery
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA, DEDUPED_CLIPS_SCHEMA
from media.tables import read_table, write_table
from orchestration.metadata import image_metadata
from orchestration.resources import ComputeResource, VersioningResource, WorkspaceResource


@versioned_asset(deps=["clip_signals"], group_name="curation", kinds={"parquet"})
def deduped_clips(
    workspace: WorkspaceResource, compute: ComputeResource, versioning: VersioningResource
) -> dg.MaterializeResult:
    """Who duplicates whom across all batches; concept clusters and balancing weights."""
    ws = workspace.workspace
    signals = read_table(ws.table("clip_signals"), CLIP_SIGNALS_SCHEMA)
    table = dedup_clips(signals, curation_config(workspace, compute).dedup)
    path = write_table(table, ws.table("deduped_clips"), DEDUPED_CLIPS_SCHEMA)
    kept = sum(table.column("keep").to_pylist())
    gallery = duplicate_gallery(
        table, read_table(ws.table("clips"), CLIPS_SCHEMA), ws.reports / "duplicates.png"
    )
    return dg.MaterializeResult(
        metadata={
            **(
                {"duplicate_gallery": image_metadata(gallery, "kept clip | its duplicates")}
                if gallery
                else {}
            ),
            "clips": dg.MetadataValue.int(table.num_rows),
            "kept": dg.MetadataValue.int(kept),
            "duplicates": dg.MetadataValue.int(table.num_rows - kept),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, path, "deduped_clips"),
        }
    )

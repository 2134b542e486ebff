"""`raw_videos`: the files under `raw/<batch>/`, fingerprinted by content hash, one partition a batch."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.partitions import raw_batches
from curation.ingest import RAW_VIDEOS_SCHEMA, scan_batch, videos_to_curate
from media.tables import read_table, write_table
from orchestration.expectations import TableExpectations, validate_table
from orchestration.resources import WorkspaceResource


@versioned_asset(partitions_def=raw_batches, group_name="curation", kinds={"parquet"})
def raw_videos(context: dg.AssetExecutionContext, workspace: WorkspaceResource) -> dg.MaterializeResult:
    """Every entry of one ingest batch (raw/<batch>/): videos with SHA-256 fingerprints, the rest skipped."""
    ws = workspace.workspace
    batch = context.partition_key
    table = scan_batch(ws.raw, batch, progress=False)
    path = write_table(table, ws.table("raw_videos", batch), RAW_VIDEOS_SCHEMA)
    hashes = [h for h in table.column("sha256").to_pylist() if h is not None]
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(table.num_rows),
            "unique_contents": dg.MetadataValue.int(len(set(hashes))),
            "skipped": dg.MetadataValue.int(table.num_rows - videos_to_curate(table)),
            "bytes": dg.MetadataValue.int(sum(b or 0 for b in table.column("size_bytes").to_pylist())),
            "path": dg.MetadataValue.path(str(path)),
            "preview": dg.MetadataValue.md(
                table.select(["relative_path", "size_bytes", "sha256", "skip_reason"])
                .slice(0, 20)
                .to_pandas()
                .to_markdown()
                if table.num_rows
                else "(empty batch)"
            ),
        },
        data_version=dg.DataVersion(_batch_version(hashes)),
    )


def _batch_version(hashes: list[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]


RAW_VIDEOS_EXPECTATIONS = TableExpectations(
    "raw_videos",
    columns=RAW_VIDEOS_SCHEMA.names,
    not_null=["batch", "path"],
    unique=["path"],
    ranges={"size_bytes": (0, None)},
)


@dg.asset_check(asset=raw_videos, blocking=True, description="Great Expectations suite on raw_videos.")
def raw_videos_expectations(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    frame = read_table(workspace.workspace.table("raw_videos")).to_pandas()
    report = validate_table(frame, RAW_VIDEOS_EXPECTATIONS)
    return dg.AssetCheckResult(
        passed=report.success,
        description=report.summary(),
        metadata={"rows": report.rows, "failed_expectations": len(report.failures)},
    )

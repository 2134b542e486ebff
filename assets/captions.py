"""`captions`: one structured caption (or a recorded failure) per clip of the tiers."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.versioned import commit_version
from curation.captions import CAPTIONS_SCHEMA, CaptionConfig, caption_problems, records_to_table
from curation.captions.pipeline import caption_rows
from curation.schemas import CLIPS_SCHEMA, TIERS_SCHEMA
from media.tables import read_table, write_table
from orchestration.resources import VersioningResource, WorkspaceResource


def _tier_clip_ids(workspace: WorkspaceResource) -> list[str]:
    """Every clip of the 256p tier (which holds all the higher tiers), in table order."""
    tiers = read_table(workspace.workspace.table("tiers"), TIERS_SCHEMA)
    ids = tiers.column("clip_id").to_pylist()
    in_256p = tiers.column("tier_256p").to_pylist()
    return list(dict.fromkeys(str(c) for c, member in zip(ids, in_256p, strict=True) if member))


@versioned_asset(deps=["tiers"], group_name="curation", kinds={"parquet"})
def captions(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, versioning: VersioningResource
) -> dg.MaterializeResult:
    """Structured JSON captions (+ confident camera motion) of every tier clip, per-field provenance."""
    ws = workspace.workspace
    config = workspace.config_for(CaptionConfig)
    wanted = set(_tier_clip_ids(workspace))
    rows = [
        row
        for row in read_table(ws.table("clips"), CLIPS_SCHEMA).to_pylist()
        if str(row["clip_id"]) in wanted
    ]
    records = caption_rows(rows, config, progress=False)
    table = records_to_table(records)
    path = write_table(table, ws.table("captions"), CAPTIONS_SCHEMA)
    statuses = table.column("status").to_pylist()
    context.log.info(
        f"captioned {len(records)} clips with {config.backend}; failed {statuses.count('failed')}"
    )
    return dg.MaterializeResult(
        metadata={
            "rows": dg.MetadataValue.int(table.num_rows),
            "failed": dg.MetadataValue.int(statuses.count("failed")),
            "repaired": dg.MetadataValue.int(statuses.count("repaired")),
            "with_camera_movement": dg.MetadataValue.int(
                table.num_rows - table.column("camera_movement").null_count
            ),
            "backends": dg.MetadataValue.text(", ".join(sorted(set(table.column("backend").to_pylist())))),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, path, "captions"),
        }
    )


@dg.asset_check(
    asset=captions, blocking=True, description="Every clip of the tiers has a valid structured caption."
)
def every_tier_clip_has_a_valid_caption(workspace: WorkspaceResource) -> dg.AssetCheckResult:
    table = read_table(workspace.workspace.table("captions"), CAPTIONS_SCHEMA)
    problems = caption_problems(table, _tier_clip_ids(workspace))
    return dg.AssetCheckResult(
        passed=not problems,
        description="all tier clips captioned"
        if not problems
        else f"{len(problems)} clips without a valid caption",
        metadata={
            "problems": dg.MetadataValue.text("\n".join(problems[:50]) or "none"),
            "rows": table.num_rows,
        },
    )

"""`tiers` (256p ⊃ 360p ⊃ 540p ⊃ 720p, with a decision row per clip/tier/filter) and `sft_candidates`."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.curation_config import curation_config
from assets.versioned import commit_version
from curation.config import TIER_NAMES
from curation.pipeline import make_tiers
from curation.schemas import (
    CLIP_SIGNALS_SCHEMA,
    DEDUPED_CLIPS_SCHEMA,
    SFT_CANDIDATES_SCHEMA,
    TIER_DECISIONS_SCHEMA,
    TIERS_SCHEMA,
)
from curation.tiers import draw_funnel
from curation.tiers import sft_candidates as propose_sft_candidates
from media.tables import read_table, write_table
from orchestration.inline_charts import bar_chart
from orchestration.metadata import image_metadata
from orchestration.resources import ComputeResource, VersioningResource, WorkspaceResource


@versioned_asset(deps=["deduped_clips"], group_name="curation", kinds={"parquet"})
def tiers(
    workspace: WorkspaceResource, compute: ComputeResource, versioning: VersioningResource
) -> dg.MaterializeResult:
    """Nested quality tiers; tier_decisions.parquet records every filter's value and threshold."""
    ws = workspace.workspace
    config = curation_config(workspace, compute)
    signals = read_table(ws.table("clip_signals"), CLIP_SIGNALS_SCHEMA).sort_by("clip_id")
    deduped = read_table(ws.table("deduped_clips"), DEDUPED_CLIPS_SCHEMA)
    result = make_tiers(signals, deduped, config)
    write_table(result.decisions, ws.table("tier_decisions"), TIER_DECISIONS_SCHEMA)
    path = write_table(result.membership, ws.table("tiers"), TIERS_SCHEMA)
    png = draw_funnel(result.funnel, ws.reports / "curation_funnel.png")
    return dg.MaterializeResult(
        metadata={
            **{
                f"tier_{n}": dg.MetadataValue.int(sum(result.membership.column(f"tier_{n}").to_pylist()))
                for n in TIER_NAMES
            },
            "funnel": bar_chart(result.funnel, "clips left after each curation stage"),
            "funnel_png": image_metadata(png, "curation funnel"),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, path, "tiers"),
        }
    )


@versioned_asset(deps=["tiers"], group_name="curation", kinds={"parquet"})
def sft_candidates(workspace: WorkspaceResource, compute: ComputeResource) -> dg.MaterializeResult:
    """Top-tier clips proposed to raters for the SFT set (accepted or rejected in the eval UI)."""
    ws = workspace.workspace
    signals = read_table(ws.table("clip_signals"), CLIP_SIGNALS_SCHEMA).sort_by("clip_id")
    membership = read_table(ws.table("tiers"), TIERS_SCHEMA)
    table = propose_sft_candidates(signals, membership, curation_config(workspace, compute).sft)
    path = write_table(table, ws.table("sft_candidates"), SFT_CANDIDATES_SCHEMA)
    return dg.MaterializeResult(
        metadata={
            "candidates": dg.MetadataValue.int(table.num_rows),
            "path": dg.MetadataValue.path(str(path)),
        }
    )

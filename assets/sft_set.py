"""`sft_set`: the SFT clips people accepted in the rater app, from the top tiers' candidates."""

import dagster as dg

from assets.code_versions import versioned_asset
from assets.versioned import commit_version
from curation.clip_export import export_sft_candidates
from curation.schemas import CLIPS_SCHEMA, SFT_CANDIDATES_SCHEMA, TIERS_SCHEMA
from evaluation.human_eval import AUTO_RULE, SFT_SET_SCHEMA, SftCandidateSpec, select_sft_set
from media.tables import read_table, write_table
from orchestration.resources import HumanEvalResource, VersioningResource, WorkspaceResource


@versioned_asset(
    deps=["sft_candidates", "clips", "tiers"], group_name="evaluation", kinds={"parquet", "sqlite"}
)
def sft_set(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    human_eval: HumanEvalResource,
    versioning: VersioningResource,
) -> dg.MaterializeResult:
    """Clips accepted by annotators in the rater app (SFT selection page)."""
    ws = workspace.workspace
    candidates = read_table(ws.table("sft_candidates"), SFT_CANDIDATES_SCHEMA)
    exported = export_sft_candidates(
        candidates, read_table(ws.table("clips"), CLIPS_SCHEMA), ws.clips / "sft"
    )
    tier = {r["clip_id"]: r["highest_tier"] for r in read_table(ws.table("tiers"), TIERS_SCHEMA).to_pylist()}
    specs = [
        SftCandidateSpec(c.clip_id, str(c.video_path), tier=tier[c.clip_id], aesthetic_score=c.score)
        for c in exported
    ]
    selection = select_sft_set(human_eval.db_url, specs, human_eval.sft_auto_accept_unreviewed)
    path = write_table(selection.table, ws.table("sft_set"), SFT_SET_SCHEMA)
    if selection.selected_by == AUTO_RULE:
        context.log.warning(f"sft_set: {AUTO_RULE}")
    return dg.MaterializeResult(
        metadata={
            "clips": dg.MetadataValue.int(selection.table.num_rows),
            "candidates": dg.MetadataValue.int(selection.candidates),
            "new_candidates_for_review": dg.MetadataValue.int(selection.new_candidates),
            "selected_by": dg.MetadataValue.text(selection.selected_by),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, path, "sft_set"),
        }
    )

"""`sft_set`: the SFT clips people accepted in the rater app, from the top tier's candidates."""

import dagster as dg
import pyarrow as pa

from assets.versioned import commit_version
from curation.clip_export import export_clip
from curation.schemas import CLIPS_SCHEMA, SFT_CANDIDATES_SCHEMA
from evaluation.human_eval import SftCandidateSpec, accepted_sft_clips, import_sft_candidates
from media.tables import read_table, write_table
from orchestration.resources import HumanEvalResource, VersioningResource, WorkspaceResource

SFT_SET_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("accepts", pa.int32(), nullable=False),
        pa.field("rejects", pa.int32(), nullable=False),
        pa.field("selected_by", pa.string(), nullable=False),  # "people" or the rule that stood in
    ]
)
AUTO_RULE = "rule: every candidate (no person has reviewed any yet; tiny profile)"


@dg.asset(
    deps=["sft_candidates", "clips"],
    group_name="evaluation",
    kinds={"parquet", "sqlite"},
    description="Clips accepted by annotators in the rater app (SFT selection page).",
)
def sft_set(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    human_eval: HumanEvalResource,
    versioning: VersioningResource,
) -> dg.MaterializeResult:
    ws = workspace.workspace
    candidates = read_table(ws.table("sft_candidates"), SFT_CANDIDATES_SCHEMA).to_pylist()
    clips = {row["clip_id"]: row for row in read_table(ws.table("clips"), CLIPS_SCHEMA).to_pylist()}
    specs = []
    for candidate in candidates:
        clip = clips[candidate["clip_id"]]
        video = export_clip(
            clip["source_path"],
            clip["start_frame"],
            clip["end_frame"],
            clip["fps"],
            ws.clips / "sft" / f"{clip['clip_id']}.mp4",
        )
        specs.append(
            SftCandidateSpec(clip["clip_id"], str(video), tier="720p", aesthetic_score=candidate["score"])
        )
    added = import_sft_candidates(human_eval.db_url, specs)
    accepted = accepted_sft_clips(human_eval.db_url)
    reviewed = bool(accepted) or _any_decision(human_eval.db_url)
    if accepted or reviewed or not human_eval.sft_auto_accept_unreviewed:
        rows = [
            {"clip_id": c.clip_id, "video_path": c.video_path, "accepts": c.accepts, "rejects": c.rejects}
            | {"selected_by": "people"}
            for c in accepted
        ]
    else:
        rows = [
            {
                "clip_id": s.clip_id,
                "video_path": s.video_path,
                "accepts": 0,
                "rejects": 0,
                "selected_by": AUTO_RULE,
            }
            for s in specs
        ]
    table = pa.Table.from_pylist(rows, schema=SFT_SET_SCHEMA)
    path = write_table(table, ws.table("sft_set"), SFT_SET_SCHEMA)
    if rows and rows[0]["selected_by"] != "people":
        context.log.warning(f"sft_set: {AUTO_RULE}")
    return dg.MaterializeResult(
        metadata={
            "clips": dg.MetadataValue.int(table.num_rows),
            "candidates": dg.MetadataValue.int(len(specs)),
            "new_candidates_for_review": dg.MetadataValue.int(added),
            "selected_by": dg.MetadataValue.text(str(rows[0]["selected_by"]) if rows else "nobody yet"),
            "path": dg.MetadataValue.path(str(path)),
            **commit_version(versioning, path, "sft_set"),
        }
    )


def _any_decision(db_url: str) -> bool:
    from sqlalchemy import func, select

    from evaluation.human_eval.schema import SftDecision
    from evaluation.human_eval.store import open_store

    with open_store(db_url).session() as session:
        return bool(session.scalar(select(func.count()).select_from(SftDecision)))

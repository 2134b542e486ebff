"""Evaluation of the SFT model and its promotion.

`generations` (eval prompts through `serving.generate`) → `human_eval` (a blinded GSB campaign, the
candidate against the champion or the previous stage) → `champion` (the registry alias moves only
when the gates pass). The `human_eval_promotion_sensor` re-materializes `champion` when a campaign
completes; `champion` is also what the Gradio demo serves.
"""

import json

import dagster as dg
import numpy as np

from evaluation.config import EvaluationConfig
from evaluation.generations import GENERATIONS_SCHEMA, evaluation_set, serving_generator
from evaluation.human_eval import (
    CampaignError,
    HumanEvalConfig,
    ModelSpec,
    assign_raters,
    campaign_complete,
    campaign_progress,
    campaign_results,
    create_campaign,
    find_campaign,
)
from evaluation.promotion import Gate, champion_version, latest_stage_version, promote
from media.tables import read_table, write_table
from orchestration.metadata import image_metadata, keyframe_grid
from orchestration.resources import HumanEvalResource, TrackingResource, WorkspaceResource


def _candidate(tracking: TrackingResource) -> str:
    version = latest_stage_version(tracking.tracking_uri, tracking.registered_model, "sft")
    if version is None:
        raise dg.Failure(
            f"no registered {tracking.registered_model} version with stage=sft; run dit_sft first"
        )
    return version


@dg.asset(
    deps=["dit_sft"],
    group_name="evaluation",
    kinds={"parquet", "mp4"},
    description="Videos of the SFT model on the evaluation prompts, with automatic metrics.",
)
def generations(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, tracking: TrackingResource
) -> dg.MaterializeResult:
    ws = workspace.workspace
    version = _candidate(tracking)
    ref = f"models:/{tracking.registered_model}/{version}"
    evaluation = workspace.config_for(EvaluationConfig)
    generate = serving_generator(ws.reports / "generations", evaluation.generation, tracking.tracking_uri)
    table = evaluation_set(
        ref,
        evaluation.prompts(),
        evaluation.seeds,
        generate,
        progress=lambda done, total: context.log.info(f"generated {done}/{total}"),
    )
    path = write_table(table, ws.table("generations"), GENERATIONS_SCHEMA)
    grid = keyframe_grid(table.column("path").to_pylist(), ws.reports / "generations_keyframes.png")
    return dg.MaterializeResult(
        metadata={
            "model": dg.MetadataValue.text(ref),
            "videos": dg.MetadataValue.int(table.num_rows),
            "mean_temporal_consistency": dg.MetadataValue.float(
                float(np.mean(table.column("temporal_consistency").to_numpy()))
            ),
            "mean_flicker": dg.MetadataValue.float(float(np.mean(table.column("flicker").to_numpy()))),
            "keyframes": image_metadata(grid),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


@dg.asset(
    deps=["generations"],
    group_name="evaluation",
    kinds={"sqlite"},
    description="A blinded pairwise (GSB) campaign: the SFT model against the champion or the previous stage.",
)
def human_eval(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    human_eval: HumanEvalResource,
) -> dg.MaterializeResult:
    ws = workspace.workspace
    candidate = _candidate(tracking)
    baseline = champion_version(tracking.tracking_uri, tracking.registered_model)
    if baseline is None or baseline == candidate:
        baseline = latest_stage_version(tracking.tracking_uri, tracking.registered_model, "video_high_long")
    if baseline is None:
        raise dg.Failure("no baseline to compare against: neither a champion nor a video_high_long version")
    name = f"sft-v{candidate}-vs-v{baseline}"
    config = workspace.config_for(HumanEvalConfig, db_url=human_eval.db_url)
    evaluation = workspace.config_for(EvaluationConfig)
    try:
        campaign_id = find_campaign(human_eval.db_url, name)
    except CampaignError:
        campaign_id = create_campaign(
            human_eval.db_url,
            name,
            evaluation.prompts(),
            [
                ModelSpec("candidate", f"models:/{tracking.registered_model}/{candidate}"),
                ModelSpec("baseline", f"models:/{tracking.registered_model}/{baseline}"),
            ],
            serving_generator(ws.reports / "generations", evaluation.generation, tracking.tracking_uri),
            config,
            ws.reports / "human_eval",
        )
    raters = _rater_ids(human_eval.db_url)
    progress = campaign_progress(human_eval.db_url, campaign_id)
    if progress.assignments == 0 and len(raters) >= config.raters_per_pair:
        assign_raters(human_eval.db_url, campaign_id, raters, config)
        progress = campaign_progress(human_eval.db_url, campaign_id)
    elif progress.assignments == 0:
        context.log.warning(
            f"campaign {name}: {len(raters)} rater account(s), {config.raters_per_pair} needed per pair; "
            "create them with `videofoundry eval-rater NAME` and materialize human_eval again"
        )
    return dg.MaterializeResult(
        metadata={
            "campaign": dg.MetadataValue.text(name),
            "campaign_id": dg.MetadataValue.int(campaign_id),
            "assignments": dg.MetadataValue.int(progress.assignments),
            "rated": dg.MetadataValue.int(progress.rated),
            "raters": dg.MetadataValue.int(len(raters)),
            "rater_app": dg.MetadataValue.text("videofoundry serve raters"),
        }
    )


def _rater_ids(db_url: str) -> list[int]:
    from sqlalchemy import select

    from evaluation.human_eval.schema import Rater
    from evaluation.human_eval.store import open_store

    with open_store(db_url).session() as session:
        return list(session.scalars(select(Rater.id).where(Rater.role == "rater")))


def _human_gate(db_url: str, campaign: str | None, floor: float) -> Gate:
    if campaign is None:
        return Gate("human_eval_overall_win_rate", None, floor)
    campaign_id = find_campaign(db_url, campaign)
    if not campaign_complete(db_url, campaign_id):
        return Gate("human_eval_overall_win_rate", None, floor)
    table3 = campaign_results(db_url, campaign_id).table3
    row = table3[table3["Model"] == "candidate"]
    value = float(row["Overall preference"].iloc[0]) / 100 if not row.empty else None
    return Gate("human_eval_overall_win_rate", value, floor)


@dg.asset(
    deps=["human_eval", "vae_eval"],
    group_name="evaluation",
    kinds={"mlflow"},
    description="Moves the registry alias `champion` to the SFT version when every gate passes.",
)
def champion(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    human_eval: HumanEvalResource,
) -> dg.MaterializeResult:
    ws = workspace.workspace
    candidate = _candidate(tracking)
    vae_report = json.loads((ws.reports / "vae_eval.json").read_text())
    vae_psnr = min(b["psnr"] for b in vae_report["benchmarks"].values())
    consistency = float(
        np.mean(read_table(ws.table("generations")).column("temporal_consistency").to_numpy())
    )
    campaign = context.instance.get_latest_materialization_event(dg.AssetKey("human_eval"))
    campaign_name = (
        campaign.asset_materialization.metadata["campaign"].value
        if campaign and campaign.asset_materialization
        else None
    )
    evaluation = workspace.config_for(EvaluationConfig)
    gates = [
        Gate("vae_psnr_db", vae_psnr, evaluation.vae_psnr_floor_db),
        Gate("temporal_consistency", consistency, evaluation.temporal_consistency_floor),
    ]
    human = _human_gate(
        human_eval.db_url, str(campaign_name) if campaign_name else None, evaluation.gsb_win_rate_floor
    )
    if evaluation.require_human_eval or human.value is not None:
        gates.append(human)
    decision = promote(tracking.tracking_uri, tracking.registered_model, candidate, gates)
    context.log.info(f"promotion of v{candidate}: {decision.reason}")
    return dg.MaterializeResult(
        metadata={
            "candidate_version": dg.MetadataValue.text(candidate),
            "promoted": dg.MetadataValue.bool(decision.promoted),
            "champion_version": dg.MetadataValue.text(
                champion_version(tracking.tracking_uri, tracking.registered_model) or "none"
            ),
            "reason": dg.MetadataValue.text(decision.reason),
        }
    )

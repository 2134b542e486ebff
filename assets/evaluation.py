"""Evaluation of the SFT model and its promotion.

`generations` (eval prompts through `serving.generate`) → `human_eval` (a blinded GSB campaign, the
candidate against the champion or the previous stage) → `champion` (the registry alias moves only
when the gates pass). The `human_eval_promotion_sensor` re-materializes `champion` when a campaign
completes; `champion` is also what the Gradio demo serves. The rules live in `evaluation.promotion`,
`evaluation.generations` and `evaluation.human_eval.campaign`.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from assets.code_versions import versioned_asset
from evaluation.config import EvaluationConfig
from evaluation.generations import (
    GENERATIONS_SCHEMA,
    evaluation_set,
    generation_summary,
    serving_generator,
)
from evaluation.human_eval import HumanEvalConfig, advance_campaign
from evaluation.promotion import (
    candidate_comparison,
    candidate_version,
    champion_version,
    decide_promotion,
    model_ref,
)
from media.tables import write_table
from orchestration.automation import latest_campaign
from orchestration.metadata import image_metadata, keyframe_grid
from orchestration.resources import HumanEvalResource, TrackingResource, WorkspaceResource
from serving.config import ServingConfig, serving_config


def _generator(workspace: WorkspaceResource, tracking: TrackingResource) -> Callable[[str, int, str], Path]:
    """Evaluation videos through `serving.generate` with the profile's serving and sampling settings."""
    ws = workspace.workspace
    return serving_generator(
        ws.reports / "generations",
        workspace.config_for(EvaluationConfig).generation,
        tracking.tracking_uri,
        serving_config(workspace.config_for(ServingConfig), str(ws.serving_cache)),
    )


@versioned_asset(deps=["dit_sft"], group_name="evaluation", kinds={"parquet", "mp4"})
def generations(
    context: dg.AssetExecutionContext, workspace: WorkspaceResource, tracking: TrackingResource
) -> dg.MaterializeResult:
    """Videos of the SFT model on the evaluation prompts, with automatic metrics."""
    ws = workspace.workspace
    evaluation = workspace.config_for(EvaluationConfig)
    ref = model_ref(
        tracking.registered_model, candidate_version(tracking.tracking_uri, tracking.registered_model)
    )
    table = evaluation_set(
        ref,
        evaluation.prompts(),
        evaluation.seeds,
        _generator(workspace, tracking),
        progress=lambda done, total: context.log.info(f"generated {done}/{total}"),
    )
    path = write_table(table, ws.table("generations"), GENERATIONS_SCHEMA)
    grid = keyframe_grid(table.column("path").to_pylist(), ws.reports / "generations_keyframes.png")
    return dg.MaterializeResult(
        metadata={
            "model": dg.MetadataValue.text(ref),
            "videos": dg.MetadataValue.int(table.num_rows),
            **{name: dg.MetadataValue.float(value) for name, value in generation_summary(table).items()},
            "keyframes": image_metadata(grid),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


@versioned_asset(deps=["generations"], group_name="evaluation", kinds={"sqlite"})
def human_eval(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    human_eval: HumanEvalResource,
) -> dg.MaterializeResult:
    """A blinded pairwise (GSB) campaign: the SFT model against the champion or the previous stage."""
    comparison = candidate_comparison(tracking.tracking_uri, tracking.registered_model)
    status = advance_campaign(
        workspace.config_for(HumanEvalConfig, db_url=human_eval.db_url),
        comparison.campaign,
        workspace.config_for(EvaluationConfig).prompts(),
        comparison.models,
        _generator(workspace, tracking),
        workspace.workspace.reports / "human_eval",
    )
    if status.waiting_for_raters:
        context.log.warning(status.describe())
    return dg.MaterializeResult(
        metadata={
            "campaign": dg.MetadataValue.text(status.name),
            "campaign_id": dg.MetadataValue.int(status.campaign_id),
            "assignments": dg.MetadataValue.int(status.progress.assignments),
            "rated": dg.MetadataValue.int(status.progress.rated),
            "raters": dg.MetadataValue.int(status.raters),
            "rater_app": dg.MetadataValue.text("videofoundry serve raters"),
        }
    )


@versioned_asset(deps=["human_eval", "vae_eval"], group_name="evaluation", kinds={"mlflow"})
def champion(
    context: dg.AssetExecutionContext,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    human_eval: HumanEvalResource,
) -> dg.MaterializeResult:
    """Moves the registry alias `champion` to the SFT version when every gate passes."""
    ws = workspace.workspace
    decision = decide_promotion(
        tracking.tracking_uri,
        tracking.registered_model,
        vae_report=ws.reports / "vae_eval.json",
        generations=ws.table("generations"),
        floors=workspace.config_for(EvaluationConfig),
        human_eval_db=human_eval.db_url,
        campaign=latest_campaign(context.instance),
    )
    context.log.info(f"promotion of v{decision.version}: {decision.reason}")
    return dg.MaterializeResult(
        metadata={
            "candidate_version": dg.MetadataValue.text(decision.version),
            "promoted": dg.MetadataValue.bool(decision.promoted),
            "champion_version": dg.MetadataValue.text(
                champion_version(tracking.tracking_uri, tracking.registered_model) or "none"
            ),
            "reason": dg.MetadataValue.text(decision.reason),
        }
    )

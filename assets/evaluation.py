"""Evaluation of the SFT model and its promotion.

`generations` (eval prompts through `serving.generate`, scored by `evaluate_videos` against the
calibrated gates, logged to MLflow) → `human_eval` (a blinded GSB campaign, the candidate against
the champion or the previous stage) → `champion` (the registry alias moves only when the gates pass:
VAE floor, video gates, human eval; the report pictures go to Dagster metadata and MLflow). The `human_eval_promotion_sensor` re-materializes `champion` when a campaign
completes; `champion` is also what the Gradio demo serves. The rules live in `evaluation.promotion`,
`evaluation.generations` and `evaluation.human_eval.campaign`.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import torch

from assets.code_versions import versioned_asset
from evaluation.config import EvaluationConfig
from evaluation.generations import GENERATIONS_SCHEMA, evaluation_set, serving_generator
from evaluation.human_eval import HumanEvalConfig, advance_campaign, campaign_results
from evaluation.promotion import (
    PromotionOutcome,
    candidate_comparison,
    candidate_version,
    champion_version,
    decide_promotion,
    model_ref,
    record_video_evaluation,
    recorded_video_metrics,
)
from evaluation.promotion_charts import campaign_charts, promotion_charts
from evaluation.sft_recall import (
    MODES,
    SFT_RECALL_SCHEMA,
    RecallClip,
    mean_psnr,
    sft_recall,
)
from evaluation.vae_benchmarks import reconstruct
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import VideoEvaluationReport, evaluate_videos
from evaluation.video_metrics_table import render_metrics_table
from media.tables import write_table
from orchestration.automation import latest_campaign
from orchestration.metadata import image_metadata, keyframe_grid
from orchestration.resources import HumanEvalResource, TrackingResource, WorkspaceResource
from serving import Video, generate, load_pipeline, write_mp4
from serving.config import ServingConfig, serving_config
from training.dit.config import DiTTrainConfig
from training.dit.records import frames_as_trained, records_from_tables
from training.tracking import RunTracker


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
    version = candidate_version(tracking.tracking_uri, tracking.registered_model)
    ref = model_ref(tracking.registered_model, version)
    table = evaluation_set(
        ref,
        evaluation.prompts(),
        evaluation.seeds,
        _generator(workspace, tracking),
        progress=lambda done, total: context.log.info(f"generated {done}/{total}"),
    )
    path = write_table(table, ws.table("generations"), GENERATIONS_SCHEMA)
    grid = keyframe_grid(table.column("path").to_pylist(), ws.reports / "generations_keyframes.png")
    recall_metrics, recall_metadata = _sft_recall(workspace, tracking, ref)
    report, report_path, metrics_png, run_id = _evaluate_generations(
        table, workspace, tracking, version, recall_metrics
    )
    return dg.MaterializeResult(
        metadata={
            "model": dg.MetadataValue.text(ref),
            "videos": dg.MetadataValue.int(table.num_rows),
            **recall_metadata,
            **_gate_metadata(report),
            "metrics_table": image_metadata(metrics_png),
            "keyframes": image_metadata(grid),
            "evaluation_report": dg.MetadataValue.path(str(report_path)),
            "mlflow_run_id": dg.MetadataValue.text(str(run_id)),
            "path": dg.MetadataValue.path(str(path)),
        }
    )


def _sft_recall(
    workspace: WorkspaceResource, tracking: TrackingResource, ref: str
) -> tuple[dict[str, float], dict[str, Any]]:
    """The model on its first SFT clips' training captions (T2V, and I2V from the clip's first
    frame) at the size they were trained at, PSNR against the clips and against the model's VAE
    round trip of each clip (evaluation.sft_recall); the table in tables/, and a picture of middle
    frames, one row per clip: clip | T2V | I2V. Returns the mean PSNRs per mode (and of the
    mean-colour baseline and the VAE round trip) and the asset metadata."""
    ws = workspace.workspace
    dit = workspace.config_for(DiTTrainConfig)
    records = records_from_tables(ws.tables, "sft_set")[
        : workspace.config_for(EvaluationConfig).sft_recall_clips
    ]
    serving = serving_config(workspace.config_for(ServingConfig), str(ws.serving_cache))
    pipeline = load_pipeline(ref, config=serving, tracking_uri=tracking.tracking_uri)
    clips = []
    for record in records:
        frames = frames_as_trained(record, dit)
        count, height, width = frames.shape[:3]
        tiled = pipeline.vae_tiled(height, width, count)
        roundtrip = reconstruct(
            pipeline.vae, frames, tiled, None if pipeline.dtype == torch.float32 else pipeline.dtype
        )
        clips.append(RecallClip(record.clip_id, record.prompt, frames, roundtrip))
    out = ws.reports / "sft_recall"
    out.mkdir(parents=True, exist_ok=True)
    videos: list[Path] = []

    def generate_clip(clip: RecallClip, mode: str) -> tuple[np.ndarray, Path]:
        frames, height, width = clip.frames.shape[:3]
        video = generate(
            clip.prompt, clip.frames[0] if mode == "i2v" else None, model=ref, config=serving,
            tracking_uri=tracking.tracking_uri, height=height, width=width, frames=frames,
            steps=dit.sample_steps, shift=dit.sample_shift, guidance=dit.guidance.scale, seed=0,
        )  # fmt: skip
        if mode == MODES[0]:  # each clip's row of the picture starts with the clip itself
            videos.append(
                write_mp4(
                    Video(clip.frames, video.fps, {}), out / f"{clip.clip_id}-clip.mp4", thumbnail=False
                )
            )
        videos.append(write_mp4(video, out / f"{clip.clip_id}-{mode}.mp4", thumbnail=False))
        return np.asarray(video.frames), videos[-1]

    table = sft_recall(ref, clips, generate_clip)
    write_table(table, ws.table("sft_recall"), SFT_RECALL_SCHEMA)
    grid = keyframe_grid(videos, ws.reports / "sft_recall.png", columns=3) if videos else None
    metrics = {
        f"sft_recall_{mode}_{name}": value
        for mode in MODES
        for name, column in (
            ("psnr_db", "psnr_db"),
            ("mean_colour_baseline_db", "mean_colour_psnr_db"),
            ("psnr_vs_vae_roundtrip_db", "psnr_vs_vae_roundtrip_db"),
            ("vae_roundtrip_db", "vae_roundtrip_psnr_db"),
        )
        if (value := mean_psnr(table, mode, column)) is not None
    }
    metadata: dict[str, Any] = {name: dg.MetadataValue.float(value) for name, value in metrics.items()}
    metadata["sft_recall_clips"] = dg.MetadataValue.int(table.num_rows // len(MODES))
    if grid is not None:
        metadata["sft_recall"] = image_metadata(grid)
    return metrics, metadata


def _evaluate_generations(
    table: pa.Table,
    workspace: WorkspaceResource,
    tracking: TrackingResource,
    version: str,
    recall_metrics: dict[str, float],
) -> tuple[VideoEvaluationReport, Path, Path, str | None]:
    """Metrics and gates of the generated videos: a JSON report and a table image in reports/,
    an MLflow run with both, and the verdict recorded on the model version."""
    ws = workspace.workspace
    report = evaluate_videos(
        [Path(p) for p in table.column("path").to_pylist()],
        table.column("prompt").to_pylist(),
        config=workspace.config_for(VideoEvalConfig),
    )
    report_path = ws.reports / "generations_eval.json"
    report_path.write_text(json.dumps(report.to_dict(), indent=2))
    metrics_png = render_metrics_table(report, ws.reports / "generations_metrics.png")
    run = RunTracker(
        tracking.tracking_uri,
        tracking.experiment,
        run_name=f"eval_generations_v{version}",
        artifact_location=tracking.artifact_uri,
        tags={"registered_model": tracking.registered_model, "model_version": version},
    )
    run.log_metrics({**report.mlflow_metrics(), **recall_metrics}, step=0)
    run.log_file(metrics_png, "evaluation")
    run.log_file(report_path, "evaluation")
    run.finish()
    record_video_evaluation(
        tracking.tracking_uri, tracking.registered_model, version, report.to_dict(), run.run_id
    )
    return report, report_path, metrics_png, run.run_id


def _gate_metadata(report: VideoEvaluationReport) -> dict[str, Any]:
    """Dagster metadata of the gate verdicts and metric means."""
    return {
        "gates_passed": dg.MetadataValue.bool(report.passed),
        **{
            f"gate_{v.metric}": dg.MetadataValue.text(f"{'pass' if v.passed else 'FAIL'}: {v.reason}")
            for v in report.gates
        },
        **{
            f"{key}_mean": dg.MetadataValue.float(summary.mean)
            for key, summary in report.metrics.items()
            if summary.mean is not None
        },
    }


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
    results = campaign_results(human_eval.db_url, status.campaign_id)
    charts = campaign_charts(
        results, workspace.workspace.reports / "human_eval", prefix=f"campaign_{status.campaign_id}"
    )
    return dg.MaterializeResult(
        metadata={
            **{name: image_metadata(png) for name, png in charts.items()},
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
    outcome = decide_promotion(
        tracking.tracking_uri,
        tracking.registered_model,
        vae_report=ws.reports / "vae_eval.json",
        video_report=ws.reports / "generations_eval.json",
        config=workspace.config_for(EvaluationConfig),
        human_eval_db=human_eval.db_url,
        campaign=latest_campaign(context.instance),
    )
    decision = outcome.decision
    context.log.info(f"promotion of v{decision.version}: {decision.reason}")
    charts, run_id = _log_promotion(outcome, ws.reports, tracking)
    current = champion_version(tracking.tracking_uri, tracking.registered_model)
    return dg.MaterializeResult(metadata=_champion_metadata(outcome, current, charts, run_id))


def _champion_metadata(
    outcome: PromotionOutcome, current: str | None, charts: dict[str, Path], run_id: str | None
) -> dict[str, Any]:
    """Dagster metadata of a promotion decision: versions, reason, failed gates, charts."""
    decision = outcome.decision
    return {
        "candidate_version": dg.MetadataValue.text(decision.version),
        "promoted": dg.MetadataValue.bool(decision.promoted),
        "champion_version": dg.MetadataValue.text(current or "none"),
        "compared_with_champion": dg.MetadataValue.text(decision.previous_champion or "none"),
        "reason": dg.MetadataValue.text(decision.reason),
        "failed_gates": dg.MetadataValue.json(
            {
                g.name: {"value": g.value, "threshold": g.threshold, "shortfall": g.shortfall}
                for g in decision.gates
                if not g.passed
            }
        ),
        **{name: image_metadata(png) for name, png in charts.items()},
        "mlflow_run_id": dg.MetadataValue.text(str(run_id)),
    }


def _log_promotion(
    outcome: PromotionOutcome, reports: Path, tracking: TrackingResource
) -> tuple[dict[str, Path], str | None]:
    """Charts of the decision (metrics against the champion, GSB and BT with CIs) and an MLflow
    run holding them with the reason; returns the charts and the run id."""
    decision = outcome.decision
    previous = decision.previous_champion
    champion_metrics = (
        recorded_video_metrics(tracking.tracking_uri, tracking.registered_model, previous)
        if previous is not None and previous != decision.version
        else None
    )
    video_report = json.loads((reports / "generations_eval.json").read_text())
    charts = promotion_charts(outcome, video_report, champion_metrics, reports / "promotion")
    run = RunTracker(
        tracking.tracking_uri,
        tracking.experiment,
        run_name=f"promotion_v{decision.version}",
        artifact_location=tracking.artifact_uri,
        tags={"registered_model": tracking.registered_model, "model_version": decision.version},
    )
    run.log_metrics({"promoted": float(decision.promoted)}, step=0)
    run.set_tags({"promotion.reason": decision.reason[:5000]})
    for png in charts.values():
        run.log_file(png, "promotion")
    run.finish()
    return charts, run.run_id

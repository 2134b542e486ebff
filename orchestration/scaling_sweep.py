"""A scaling sweep in a workspace: data, MLflow ledger and the run loop that `videofoundry scaling-sweep` calls.

This joins what the domain packages may not import from each other: the trainer's sweep loop
(`training.scaling.run`) and the MLflow names the fits read (`evaluation.scaling.runs`).

Where things go:

    <experiment>-scaling-<family>        MLflow experiment of the runs (and of the fits logged there)
    <experiment>-scaling-<family>        registered model of the runs' checkpoints
    checkpoints/scaling/<family>/<run>/  each run's stage checkpoints (`training.scaling.run.run_key`)
    latents/                             the latent cache, shared with `train-dit`
    scaling_standin/                     the stand-in clips, when the workspace has no curated tier

Data: the clips of the family stage's tier from the workspace tables (the curated data, encoded
into the workspace latent cache once), else the stand-in corpus (camera moves over packaged
photos, `training.vae.standin_corpus`) written under `scaling_standin/`.

The ledger (`MlflowSweepLedger`) treats a run as finished when the experiment holds a FINISHED run
with the same preset, size and budget and a final loss; each trained run is tagged with
`evaluation.scaling.runs.sweep_run_params` (params, tokens, FLOPs, budget, data version), the
preset, steps, batch and starting checkpoint, the final loss as `FINAL_LOSS_METRIC`, and its final
checkpoint as the tag `CHECKPOINT_TAG`. A run whose final loss is not finite is marked FAILED (the
fit passes over it; a rerun trains it again).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluation.scaling.runs import (
    BUDGET_PARAM,
    FAMILY_PARAM,
    FINAL_LOSS_METRIC,
    ROLE_TAG,
    SIZE_PARAM,
    sweep_experiment,
    sweep_run_params,
)
from orchestration.workspace import Workspace
from training.dit.latent_cache import ClipRecord
from training.dit.records import ClipListError, records_from_tables
from training.results import TrainResult
from training.scaling.plan import PlannedRun, SweepConfig, SweepPlan, bracket_runs, plan_sweep
from training.scaling.run import (
    FAMILY_STAGE,
    Device,
    FinishedRun,
    SweepData,
    SweepOutcome,
    SweepSettings,
    best_checkpoints,
    run_sweep,
    run_train_config,
    video_starts,
)
from training.tracking import TrackingSettings

PRESET_PARAM = "scaling.preset"
STEPS_PARAM = "scaling.steps"
BATCH_PARAM = "scaling.batch_size"
INIT_FROM_PARAM = "scaling.init_from"
CHECKPOINT_TAG = "scaling.checkpoint"
RUN_ROLE = "run"
STANDIN_CLIPS = 32
STANDIN_FRAMES = 24
STANDIN_SIZE = 128  # covers the largest sweep bucket below the paper preset (the gpu preset's 128 px)


def sweep_checkpoint_root(ws: Workspace, family: str) -> Path:
    return ws.checkpoints / "scaling" / family


class MlflowSweepLedger:
    """The sweep's finished runs, read once from its MLflow experiment, and the tags of new ones."""

    def __init__(self, tracking_uri: str, experiment: str, preset: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.preset = preset
        self.done: dict[tuple[str, str], FinishedRun] = {}
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return
        page_token = None
        while True:
            page = self.client.search_runs([found.experiment_id], max_results=1000, page_token=page_token)
            for run in page:
                params, metrics = run.data.params, run.data.metrics
                if (
                    run.info.status != "FINISHED"
                    or run.data.tags.get(ROLE_TAG) != RUN_ROLE
                    or params.get(PRESET_PARAM) != preset
                    or FINAL_LOSS_METRIC not in metrics
                ):
                    continue
                checkpoint = run.data.tags.get(CHECKPOINT_TAG)
                finished = FinishedRun(
                    family=params[FAMILY_PARAM],
                    size=params[SIZE_PARAM],
                    budget=float(params[BUDGET_PARAM]),
                    loss=float(metrics[FINAL_LOSS_METRIC]),
                    run_id=run.info.run_id,
                    checkpoint=Path(checkpoint) if checkpoint else None,
                )
                self.done.setdefault((finished.size, repr(finished.budget)), finished)
            page_token = page.token
            if not page_token:
                return

    def finished(self, run: PlannedRun) -> FinishedRun | None:
        return self.done.get((run.size, repr(float(run.budget))))

    def record(self, run: PlannedRun, result: TrainResult, init_from: Path | None) -> FinishedRun:
        from mlflow.entities import Metric, Param, RunTag

        if result.run_id is None:
            raise RuntimeError(f"run {run.size} at C = {run.budget:.3g} trained without an MLflow run")
        params = sweep_run_params(
            run.family, run.size, run.params, run.tokens, run.flops, run.budget, result.data_version
        ) | {
            PRESET_PARAM: self.preset,
            STEPS_PARAM: str(run.steps),
            BATCH_PARAM: str(run.batch_size),
            INIT_FROM_PARAM: str(init_from) if init_from else "",
        }
        tags = {ROLE_TAG: RUN_ROLE, CHECKPOINT_TAG: str(result.checkpoint or "")}
        finite = math.isfinite(result.final_loss)
        self.client.log_batch(
            result.run_id,
            metrics=[Metric(FINAL_LOSS_METRIC, result.final_loss, int(time.time() * 1000), run.steps)]
            if finite
            else [],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        finished = FinishedRun(
            run.family, run.size, run.budget, result.final_loss, result.run_id, result.checkpoint
        )
        if finite:
            self.done[(run.size, repr(float(run.budget)))] = finished
        else:
            self.client.set_terminated(result.run_id, status="FAILED")
        return finished


def sweep_data(
    ws: Workspace,
    config: SweepConfig,
    family: str,
    data_version: str | None = None,
    standin_clips: int = STANDIN_CLIPS,
) -> SweepData:
    """The family stage's clips from the workspace tables, else `standin_clips` clips of the stand-in
    corpus (module docstring)."""
    from training.dit.config import DiTTrainConfig

    tier = DiTTrainConfig.preset(config.train_preset).stage(FAMILY_STAGE[family]).data
    if ws.table("tiers").exists():
        try:
            records = records_from_tables(ws.tables, tier)
        except ClipListError:
            records = []
        if records:
            return SweepData(records, f"workspace {tier} clips", data_version or "unversioned")
    from training.vae.standin_corpus import training_photo_paths, write_standin_corpus

    folder = ws.home / "scaling_standin"
    paths = write_standin_corpus(folder, clips=standin_clips, frames=STANDIN_FRAMES, size=STANDIN_SIZE)
    photos = training_photo_paths()  # write_standin_corpus films photo i % len(photos) in clip i
    records = [
        ClipRecord(
            path.stem, path, 0, STANDIN_FRAMES, f"a camera gliding over {photos[i % len(photos)].stem}"
        )
        for i, path in enumerate(paths)
    ]
    return SweepData(records, f"stand-in corpus ({folder})", data_version or "unversioned")


@dataclass(frozen=True)
class SweepResult:
    """A finished sweep: its plan, each run's outcome, the data it trained on, its experiment."""

    plan: SweepPlan
    outcomes: list[SweepOutcome]
    data_source: str
    experiment: str
    starts: dict[str, Path]


def scaling_sweep_in_workspace(
    ws: Workspace,
    family: str,
    budgets: Sequence[float],
    tracking: TrackingSettings,
    *,
    preset: str = "tiny",
    preset_overrides: dict[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
    device: Device = "auto",
    launcher: Literal["auto", "local", "ray"] = "auto",
    ray_address: str | None = None,
    data_version: str | None = None,
    threads: int | None = None,
    on_run: Callable[[SweepOutcome], None] | None = None,
    standin_clips: int = STANDIN_CLIPS,
    bracket: int = 0,
) -> SweepResult:
    """Plan `family` runs of `sizes` at `budgets` with the sweep preset `preset` (fields changed by
    `preset_overrides`) and train those not done.

    `tracking` is the platform's: runs log to `sweep_experiment(tracking.experiment, family)`.
    `standin_clips` sizes the stand-in corpus used when the workspace has no curated tier. With
    `bracket` = k > 0, up to k more rounds follow the plan: each trains the neighbouring ladder
    size of every budget whose lowest loss is still at an end of its sizes
    (`training.scaling.plan.bracket_runs`); the result's plan holds every run trained.
    Raises ValueError (`PresetError`, plan errors, `SweepRunError`) for bad input.
    """
    config = SweepConfig.preset(preset, **(preset_overrides or {}))
    plan = plan_sweep(family, budgets, config, sizes)
    if not plan.runs:
        raise ValueError(
            f"no run of the plan gets {config.min_steps} steps: raise the budgets ({'; '.join(plan.skipped)})"
        )
    experiment = sweep_experiment(tracking.experiment, family)
    assert tracking.uri is not None, "the platform always has a tracking URI"
    run_tracking = dataclasses.replace(tracking, experiment=experiment, registered_model=experiment)
    starts: dict[str, Path] = {}
    image_best: dict[str, Path] = {}  # video: every size's image checkpoint (bracketing may add sizes)
    if family == "video":
        image = MlflowSweepLedger(tracking.uri, sweep_experiment(tracking.experiment, "image"), preset)
        starts = video_starts(plan, list(image.done.values()))
        best = best_checkpoints(list(image.done.values()))
        image_best = {size: found.checkpoint for size, found in best.items() if found.checkpoint is not None}
    settings = SweepSettings(
        config=config,
        checkpoint_root=sweep_checkpoint_root(ws, family),
        latent_root=ws.latents,
        tracking=run_tracking,
        vae_path=_vae_path(ws, config, plan.runs[0]),
        device=device,
        launcher=launcher,
        ray_address=ray_address,
        threads=threads,
    )
    data = sweep_data(ws, config, family, data_version, standin_clips)
    ledger = MlflowSweepLedger(tracking.uri, experiment, preset)
    outcomes = run_sweep(plan, settings, data, ledger, starts, on_run)
    for _ in range(bracket):
        losses = {(o.run.budget, o.run.size): o.finished.loss for o in outcomes}
        extra = bracket_runs(family, losses, config, sorted(image_best) if family == "video" else None)
        plan = dataclasses.replace(plan, runs=plan.runs + extra.runs, skipped=plan.skipped + extra.skipped)
        if not extra.runs:
            break
        starts.update({r.size: image_best[r.size] for r in extra.runs if r.size in image_best})
        outcomes += run_sweep(extra, settings, data, ledger, starts, on_run)
    return SweepResult(plan, outcomes, data.source, experiment, starts)


def _vae_path(ws: Workspace, config: SweepConfig, run: PlannedRun) -> Path | None:
    from orchestration.workspace_training import trained_vae_path

    return trained_vae_path(ws, required=not run_train_config(run, config).standin_vae)

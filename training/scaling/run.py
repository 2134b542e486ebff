"""Running a planned sweep: every (size, budget) point trained by the normal DiT trainer.

Each `PlannedRun` becomes one DiT stage with the usual machinery: `training.dit.stages.prepare_stage`
(latent cache, plan.json, data version) and `training.launch.launch` of a `training.dit.run.StageJob`
(this process, or Ray Train workers when the training preset asks for several or for DeepSpeed),
logging to MLflow through the trainer's own `RunTracker`. The run's training config
(`run_train_config`) is the sweep's training preset with:

- the DiT width and depth of the planned size (`dit_overrides`), text tokens = the plan's;
- one stage: `image_256` for the image family (1-frame samples), `video_low_short` for the video
  family (videos only), at the plan's latent grid, for exactly `steps` optimizer steps of
  `batch_size` samples (one micro-batch per step, one square bucket), the sweep's lr and warm-up;
- one checkpoint, at the end; no sample videos.

So the run spends `steps · batch · F` FLOPs, the planned budget within one step's rounding
(`check_buckets` refuses a data path whose tokens per sample differ from the plan's).

Which runs are already done, and what each finished run is tagged with, is the caller's
`SweepLedger` (orchestration keeps it in the sweep's MLflow experiment, in the names
`evaluation.scaling.runs` reads). Checkpoints go to `<checkpoint_root>/<run_key>/<stage>/`, and a
stage is always prepared with `resume=True`: a run trained but not yet recorded (a crash between
the two) is recorded again without retraining.

Video sweeps start from the image family's best checkpoint of each size (`best_checkpoints`):
among the finished image runs of that size, the one with the lowest final training loss (at a
fixed size this is in practice the largest budget, the point nearest the image envelope's
frontier for that size); ties go to the larger budget. Its EMA and weights initialise the video
run, as the report's video sweeps start from its image sweep.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from media.threads import cpu_threads
from training.dit.buckets import VAE_SPATIAL, VAE_TEMPORAL
from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import ClipRecord
from training.dit.run import StageJob
from training.dit.stages import StagePlan, prepare_stage
from training.launch import LaunchSettings, launch
from training.results import TrainResult
from training.scaling.plan import PlannedRun, SweepConfig, SweepPlan
from training.tracking import TrackingSettings

FAMILY_STAGE = {"image": "image_256", "video": "video_low_short"}
Device = Literal["auto", "cpu", "cuda"]


class SweepRunError(ValueError):
    """A sweep cannot run as asked (no image checkpoint for a video size, a data path that does not
    match the plan, a device that is absent); the message says what to do."""


@dataclass(frozen=True)
class SweepData:
    """The clips every run of a sweep trains on, where they came from, and their data version
    ("unversioned": `prepare_stage` fingerprints the clip list)."""

    records: list[ClipRecord]
    source: str
    data_version: str = "unversioned"


@dataclass(frozen=True)
class SweepSettings:
    """Where and how a sweep's runs train.

    Attributes:
        config: the sweep preset the plan was made with.
        checkpoint_root: each run's checkpoints go to `<checkpoint_root>/<run_key(run)>/`.
        latent_root: the latent cache (shared by all runs; filled once).
        tracking: MLflow settings, `experiment` = the sweep's experiment; `registered_model`
            receives the runs' checkpoints.
        vae_path: the trained VAE, or None for the training preset's stand-in.
        device: auto (CUDA when present), cpu, or cuda (required; Ray workers ask for a GPU).
        launcher, ray_address: as for `training.dit.run.train_dit_stage`.
        threads: torch intra-op threads while the sweep runs in this process (None: torch's
            default). Tiny CPU models are overhead-bound: on a shared 2-core machine one thread ran
            a w32 step 16× faster than two, whose OpenMP workers spin against other processes.
    """

    config: SweepConfig
    checkpoint_root: Path
    latent_root: Path
    tracking: TrackingSettings
    vae_path: Path | None = None
    device: Device = "auto"
    launcher: Literal["auto", "local", "ray"] = "auto"
    ray_address: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class FinishedRun:
    """A run the ledger holds as done: its final loss, MLflow run and final checkpoint."""

    family: str
    size: str
    budget: float
    loss: float
    run_id: str
    checkpoint: Path | None


class SweepLedger(Protocol):
    """What a sweep has done: asked before each run, told after each."""

    def finished(self, run: PlannedRun) -> FinishedRun | None:
        """The finished record of `run` (same preset, family, size and budget), or None."""
        ...

    def record(self, run: PlannedRun, result: TrainResult, init_from: Path | None) -> FinishedRun:
        """Tag the trained run (params, tokens, FLOPs, final loss, data version) as finished."""
        ...


@dataclass(frozen=True)
class SweepOutcome:
    """One planned run after the sweep: `trained` now, or found `finished` before (skipped)."""

    run: PlannedRun
    status: Literal["trained", "finished"]
    finished: FinishedRun
    seconds: float


def run_key(run: PlannedRun) -> str:
    """A run's folder: budget, size, steps and batch (a changed plan never resumes a stale run)."""
    return f"C{run.budget:.3e}_{run.size}_s{run.steps}b{run.batch_size}"


def _pixel_shape(latent: tuple[int, int, int]) -> tuple[int, int]:
    """(frames, square side in pixels) of a (T, H, W) latent grid."""
    t, h, w = latent
    if h != w:
        raise SweepRunError(f"sweep latent grids must be square, got {h}×{w}")
    return (t - 1) * VAE_TEMPORAL + 1, h * VAE_SPATIAL


def run_train_config(run: PlannedRun, config: SweepConfig, device: Device = "auto") -> DiTTrainConfig:
    """The training config of one planned run (see module docstring)."""
    base = DiTTrainConfig.preset(config.train_preset)
    latent = config.image_latent if run.family == "image" else config.video_latent
    frames, side = _pixel_shape(latent)
    stage_name = FAMILY_STAGE[run.family]
    stage = base.stage(stage_name).model_copy(
        update={
            "resolutions": (side,),
            "frame_buckets": () if frames == 1 else (frames,),
            "image_ratio": 1.0 if frames == 1 else 0.0,
            "mix_resolutions": False,
            "steps": run.steps,
            "lr": config.lr,
            "warmup_steps": min(config.warmup_steps, run.steps // 4),
        }
    )
    dit = run.dit_config
    return base.replace(
        dit_preset=config.dit_preset,
        dit_overrides={
            "hidden_size": dit.hidden_size,
            "num_heads": dit.num_heads,
            "depth_double": dit.depth_double,
            "depth_single": dit.depth_single,
        },
        text_max_length=run.text_tokens,
        aspect_ratios=("1:1",),
        tokens_per_micro_batch=run.batch_size * run.video_tokens,
        max_micro_batch=run.batch_size,
        stages=tuple(stage if s.name == stage_name else s for s in base.stages),
        checkpoint_every=run.steps,
        keep_last=1,
        log_every=max(1, run.steps // 100),
        sample_every=0,
        use_gpu=device == "cuda" or (device == "auto" and base.use_gpu),
    )


def check_buckets(plan: StagePlan, run: PlannedRun) -> None:
    """The prepared stage must feed `run.batch_size` samples of `run.video_tokens` tokens a step."""
    buckets = {s.bucket for s in plan.samples}
    if not buckets:
        raise SweepRunError(
            f"{run.size}: no clip of the data fits the {plan.stage} bucket; supply longer clips"
        )
    tokens = {b.tokens for b in buckets}
    if tokens != {run.video_tokens}:
        raise SweepRunError(
            f"{run.size}: the data path gives {sorted(tokens)} video tokens a sample, the plan counts "
            f"{run.video_tokens}; the sweep preset's latent grid and the trainer's buckets disagree"
        )


def check_device(device: Device) -> None:
    """Refuse a device this machine cannot honour."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SweepRunError("--device cuda, but torch sees no CUDA device; use --device cpu or auto")
    if device == "cpu" and torch.cuda.is_available():
        raise SweepRunError(
            "--device cpu on a machine with CUDA: the trainer uses CUDA whenever it is visible; "
            "hide it with CUDA_VISIBLE_DEVICES= or use --device auto"
        )


def train_planned_run(
    run: PlannedRun, settings: SweepSettings, data: SweepData, init_from: Path | None = None
) -> TrainResult:
    """Train one planned run through the DiT trainer (resuming its checkpoint folder if any)."""
    config = run_train_config(run, settings.config, settings.device)
    tracking = dataclasses.replace(
        settings.tracking,
        run_name=f"{run.family}-{run.size}-C{run.budget:.3g}",
        data_version=data.data_version,
    )
    plan = prepare_stage(
        config,
        FAMILY_STAGE[run.family],
        data.records,
        settings.checkpoint_root / run_key(run),
        settings.latent_root,
        tracking,
        vae_path=settings.vae_path,
        init_from=init_from,
        resume=True,
        progress=False,
        in_lineage=False,
    )
    check_buckets(plan, run)
    launch_settings = LaunchSettings.for_config(
        config, mode=settings.launcher, ray_address=settings.ray_address
    )
    return launch(StageJob(plan, with_samples=False), launch_settings)


def best_checkpoints(image_runs: Sequence[FinishedRun]) -> dict[str, FinishedRun]:
    """Per size, the finished image run a video run of that size starts from (module docstring)."""
    best: dict[str, FinishedRun] = {}
    for found in image_runs:
        if found.checkpoint is None or not found.checkpoint.is_dir():
            continue
        current = best.get(found.size)
        if current is None or (found.loss, -found.budget) < (current.loss, -current.budget):
            best[found.size] = found
    return best


def video_starts(plan: SweepPlan, image_runs: Sequence[FinishedRun]) -> dict[str, Path]:
    """The image checkpoint each size of a video plan starts from; raises naming the sizes without one."""
    best = best_checkpoints(image_runs)
    sizes = {r.size for r in plan.runs}
    missing = sorted(sizes - set(best))
    if missing:
        raise SweepRunError(
            f"video sweeps start from the image sweep's best checkpoint per size; no finished image run "
            f"(with its checkpoint on disk) for {', '.join(missing)}: run `videofoundry scaling-sweep "
            f"--family image` with those sizes first"
        )
    return {size: found.checkpoint for size, found in best.items() if size in sizes and found.checkpoint}


def run_sweep(
    plan: SweepPlan,
    settings: SweepSettings,
    data: SweepData,
    ledger: SweepLedger,
    starts: Mapping[str, Path] | None = None,
    on_run: Callable[[SweepOutcome], None] | None = None,
) -> list[SweepOutcome]:
    """Train every run of `plan` the ledger does not hold as finished, in plan order.

    `starts` maps a size to the checkpoint its runs start from (the video family; see
    `video_starts`); `on_run` hears each outcome as it comes (progress).
    """
    check_device(settings.device)
    with cpu_threads(settings.threads):
        return _run_all(plan, settings, data, ledger, starts or {}, on_run)


def _run_all(
    plan: SweepPlan,
    settings: SweepSettings,
    data: SweepData,
    ledger: SweepLedger,
    starts: Mapping[str, Path],
    on_run: Callable[[SweepOutcome], None] | None,
) -> list[SweepOutcome]:
    outcomes = []
    for run in plan.runs:
        began = time.perf_counter()
        done = ledger.finished(run)
        if done is not None:
            outcome = SweepOutcome(run, "finished", done, 0.0)
        else:
            init_from = starts.get(run.size)
            result = train_planned_run(run, settings, data, init_from)
            outcome = SweepOutcome(
                run, "trained", ledger.record(run, result, init_from), time.perf_counter() - began
            )
        outcomes.append(outcome)
        if on_run is not None:
            on_run(outcome)
    return outcomes

"""Running the stage manifest: prepare a stage in the driver, train it in one or many workers.

`prepare_stage` (driver, once): finds the previous stage's finished checkpoint (`finished_stage`:
the stage starts from it, records that stage's run as `previous_stage_run`, makes its MLflow run a
child of the lineage's parent run (one per lineage, created by the first stage) with metrics at the
global step, and tags the registry version it starts from as `parent_version`), fills the latent cache for the stage's
buckets and returns a `StagePlan`, also written to `<root>/<stage>/plan.json` as the record of what
was trained (and for ranks started apart, e.g. torchrun: `StagePlan.load`). `train_stage` (each
worker) builds a `DiTTrainer` on the given backend and trains; it returns a `TrainResult`.
`training.dit.run.train_dit_stage` does both through the launcher.

Layout under the DiT checkpoint root (e.g. `<workspace>/checkpoints/dit`):

    <stage>/plan.json           what the workers train on
    <stage>/step_<k>/           training checkpoints (training.checkpointing), each a pipeline
                                bundle; the last one's metadata says the stage finished
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.text import TextEncoder
from model.vae import CausalVAE3D
from training.backends import Backend
from training.checkpointing import CheckpointManager, read_meta
from training.dit.buckets import Bucket, SampleRef
from training.dit.config import DiTTrainConfig
from training.dit.encoders import check_text_dims, make_text_encoder, make_vae
from training.dit.latent_cache import EMPTY_PROMPT_FILE, CacheStats, ClipRecord, LatentCache
from training.dit.registry import REGISTERED_MODEL, versions_of_run
from training.dit.trainer import DiTTrainer
from training.results import TrainResult
from training.tracking import TrackingSettings, lineage_run

PLAN_FILE = "plan.json"


class StagePlanChangedError(ValueError):
    """The stage's checkpoints were trained under another plan; resuming them would mix two runs."""


class StageOrderError(RuntimeError):
    """A stage was asked for before the stage it starts from finished."""


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(tmp, path)


def records_fingerprint(records: Sequence[ClipRecord]) -> str:
    """`records:<sha12>` over ids, paths, frame ranges, prompts and weights (a data version without DVC)."""
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.clip_id):
        digest.update(
            f"{r.clip_id}|{r.video_path}|{r.start_frame}|{r.end_frame}|{r.prompt}|{r.weight}\n".encode()
        )
    return f"records:{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class FinishedStage:
    """A stage whose latest checkpoint is its last step: what the next stage chains from."""

    stage: str
    checkpoint: Path
    steps: int
    run_id: str | None
    loss: float  # mean training loss of the last steps before that checkpoint


def finished_stage(checkpoint_root: Path, stage: str) -> FinishedStage | None:
    """The finished `stage` under `checkpoint_root` (its latest checkpoint's metadata), else None."""
    latest = CheckpointManager(Path(checkpoint_root) / stage).latest()
    if latest is None:
        return None
    meta = read_meta(latest)
    info = meta["metadata"]
    if info.get("stage") != stage or "steps" not in info or int(meta["step"]) < int(info["steps"]):
        return None
    return FinishedStage(
        stage, latest, int(meta["step"]), info.get("run_id"), float(info.get("loss", math.nan))
    )


@dataclass(frozen=True)
class StagePlan:
    """Everything a worker needs to train one stage (JSON-serialisable)."""

    stage: str
    config: DiTTrainConfig
    samples: list[SampleRef]
    empty_prompt_path: Path
    checkpoint_dir: Path
    init_from: Path | None
    tracking: TrackingSettings
    vae_path: Path | None
    sample_posterior: bool
    cache_stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (what `save` writes)."""
        return {
            "stage": self.stage,
            "config": self.config.model_dump(mode="json"),
            "samples": [
                {"key": s.key, "weight": s.weight, "bucket": dataclasses.asdict(s.bucket)}
                for s in self.samples
            ],
            "empty_prompt_path": str(self.empty_prompt_path),
            "checkpoint_dir": str(self.checkpoint_dir),
            "init_from": str(self.init_from) if self.init_from else None,
            "tracking": {
                k: (str(v) if isinstance(v, Path) else v)
                for k, v in dataclasses.asdict(self.tracking).items()
            },
            "vae_path": str(self.vae_path) if self.vae_path else None,
            "sample_posterior": self.sample_posterior,
            "cache_stats": self.cache_stats,
        }

    def save(self, path: Path) -> Path:
        """Write the plan as JSON (atomically); `load` reads it back."""
        _atomic_json(path, self.to_dict())
        return path

    def changes_from(self, path: Path) -> list[str]:
        """What differs between this plan and the one saved at `path` among the parts that decide what a
        checkpoint holds (config, samples, start point); [] when the same or when none was saved."""
        if not path.is_file():
            return []
        saved, current = json.loads(path.read_text()), self.to_dict()
        return [part for part in ("config", "samples", "init_from") if saved.get(part) != current[part]]

    @classmethod
    def load(cls, path: Path) -> StagePlan:
        data = json.loads(Path(path).read_text())
        return cls(
            stage=data["stage"],
            config=DiTTrainConfig.model_validate(data["config"]),
            samples=[SampleRef(s["key"], Bucket(**s["bucket"]), float(s["weight"])) for s in data["samples"]],
            empty_prompt_path=Path(data["empty_prompt_path"]),
            checkpoint_dir=Path(data["checkpoint_dir"]),
            init_from=Path(data["init_from"]) if data["init_from"] else None,
            tracking=TrackingSettings(**data["tracking"]),
            vae_path=Path(data["vae_path"]) if data["vae_path"] else None,
            sample_posterior=bool(data["sample_posterior"]),
            cache_stats=data["cache_stats"],
        )


def prepare_stage(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    checkpoint_root: Path,
    latent_root: Path,
    tracking: TrackingSettings,
    *,
    vae_path: Path | None = None,
    vae: CausalVAE3D | None = None,
    text_encoder: TextEncoder | None = None,
    init_from: Path | None = None,
    resume: bool = True,
    restart_if_plan_changed: bool = False,
    progress: bool = True,
    in_lineage: bool = True,
) -> StagePlan:
    """Chain to the previous stage, fill the latent cache, write plan.json; returns the plan.

    With `resume` (the default) the stage's checkpoints are kept, so training continues from the
    latest. If they were trained under another plan (other config, clips or start point) that is a
    `StagePlanChangedError`, unless `restart_if_plan_changed` (the Dagster asset: its inputs moved)
    deletes them. Without `resume` they are deleted: the only explicit fresh start.
    A tracking data version of "unversioned" becomes a fingerprint of `records`.
    `init_from` (a training checkpoint of the same DiT shape, e.g. a scaling sweep's image run)
    replaces the previous stage's final checkpoint as the starting point: no chaining, no parent run.
    Chained stages run as children of the lineage's parent run unless `in_lineage` is False (a
    scaling-sweep run is a run of its own).
    """
    spec = config.stage(stage)
    if tracking.data_version == "unversioned":
        tracking = dataclasses.replace(tracking, data_version=records_fingerprint(records))
    previous = config.previous_stage(stage)
    chained = init_from is None and in_lineage
    if init_from is None and previous is not None:
        found = finished_stage(checkpoint_root, previous)
        if found is None:
            raise StageOrderError(
                f"stage {stage} starts from {previous}'s final checkpoint, but {Path(checkpoint_root) / previous} "
                f"holds no finished run; train {previous} first"
            )
        init_from = found.checkpoint
        tracking = dataclasses.replace(
            tracking,
            parent_run_id=tracking.parent_run_id or found.run_id,
            parent_version=tracking.parent_version or _final_version(tracking, found),
        )
    if not records:
        raise ValueError(f"stage {stage}: the clip list for '{spec.data}' is empty")
    vae = vae if vae is not None else make_vae(config, vae_path)
    text_encoder = text_encoder if text_encoder is not None else make_text_encoder(config)
    check_text_dims(config, text_encoder)
    # Absolute paths: Ray Train workers do not run in the driver's working directory.
    cache = LatentCache(Path(latent_root).resolve(), vae, text_encoder, aspect_ratios=config.aspect_ratios)
    samples, stats = cache.build(records, spec, progress=progress)
    stage_dir = Path(checkpoint_root).resolve() / stage
    plan = StagePlan(
        stage=stage,
        config=config,
        samples=samples,
        empty_prompt_path=cache.version_dir / EMPTY_PROMPT_FILE,
        checkpoint_dir=stage_dir,
        init_from=init_from,
        tracking=tracking,
        vae_path=Path(vae_path) if vae_path else None,
        sample_posterior=config.sample_posterior,
        cache_stats=_stats_dict(stats, cache),
    )
    changed = plan.changes_from(stage_dir / PLAN_FILE) if resume else []
    if changed and not restart_if_plan_changed:
        raise StagePlanChangedError(
            f"stage {stage}: the checkpoints in {stage_dir} were trained under another plan (changed: "
            f"{', '.join(changed)}); pass --restart to delete them and start over"
        )
    if stage_dir.exists() and (changed or not resume):
        shutil.rmtree(stage_dir)
    if chained:
        plan = dataclasses.replace(plan, tracking=_in_lineage(config, stage, plan.tracking, stage_dir))
    plan.save(stage_dir / PLAN_FILE)
    return plan


def _in_lineage(
    config: DiTTrainConfig, stage: str, tracking: TrackingSettings, stage_dir: Path
) -> TrackingSettings:
    """The stage as a child of its lineage's parent run, its metrics offset by the earlier stages' steps.

    The parent run is the previous stage run's parent, or (first stage) the parent of this stage's
    resumed run, or a new one (`training.tracking.lineage_run`)."""
    names = [s.name for s in config.stages]
    offset = sum(s.steps for s in config.stages[: names.index(stage)])
    latest = CheckpointManager(stage_dir).latest() if stage_dir.exists() else None
    follows = tracking.parent_run_id or (read_meta(latest)["metadata"].get("run_id") if latest else None)
    return dataclasses.replace(
        tracking, lineage_run_id=lineage_run(tracking, follows), global_step_offset=offset
    )


def _final_version(tracking: TrackingSettings, previous: FinishedStage) -> str | None:
    """The registry version the previous stage registered last (its final checkpoint), if tracked."""
    if not (tracking.uri and previous.run_id):
        return None
    versions = versions_of_run(tracking.uri, previous.run_id, tracking.registered_model or REGISTERED_MODEL)
    return versions[-1] if versions else None


def _stats_dict(stats: CacheStats, cache: LatentCache) -> dict[str, Any]:
    return {
        "encoded": stats.encoded,
        "reused": stats.reused,
        "skipped": stats.skipped,
        "vae_version": cache.vae_version,
        "encoder_version": cache.encoder_version,
    }


def train_stage(
    plan: StagePlan,
    backend: Backend | None = None,
    resume: bool = True,
    step_hook: Callable[[int], None] | None = None,
    with_samples: bool = True,
) -> TrainResult:
    """Train the planned stage on `backend` (every worker calls this); returns this rank's result."""
    from safetensors.torch import load_file

    backend = backend or Backend(precision=plan.config.precision)
    vae = text_encoder = None
    if with_samples and backend.is_main:
        vae = make_vae(plan.config, plan.vae_path).to(backend.device)
        text_encoder = make_text_encoder(plan.config)
    trainer = DiTTrainer(
        plan.config,
        plan.stage,
        plan.samples,
        load_file(str(plan.empty_prompt_path)),
        plan.checkpoint_dir,
        init_from=plan.init_from,
        tracking=plan.tracking,
        backend=backend,
        vae=vae,
        text_encoder=text_encoder,
        sample_posterior=plan.sample_posterior,
        step_hook=step_hook,
    )
    return trainer.train(resume=resume)


def cache_latents(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    latent_root: Path,
    vae_path: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fill the latent cache for `stage`'s buckets (the `latents` asset); returns counts and versions."""
    cache = LatentCache(
        latent_root, make_vae(config, vae_path), make_text_encoder(config), aspect_ratios=config.aspect_ratios
    )
    samples, stats = cache.build(records, config.stage(stage), progress=progress)
    out = _stats_dict(stats, cache)
    out["buckets"] = sorted({s.bucket.name for s in samples})
    out["version_dir"] = str(cache.version_dir)
    return out

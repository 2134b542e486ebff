"""Training in a workspace: the domain functions the Dagster assets and the CLI commands both call.

    train_vae_in_workspace       the `vae` asset and `videofoundry train-vae`
    cache_latents_in_workspace   the `latents` asset
    train_dit_stage_in_workspace the `dit_<stage>` assets and `videofoundry train-dit`

Where training puts things in the workspace:

    checkpoints/vae/            VAE training checkpoints (step_<k>/, latest)
    checkpoints/vae_export/     the exported EMA VAE (model.checkpoints format) the DiT encodes with
    checkpoints/dit/<stage>/    DiT stage checkpoints (plan.json, step_<k>/ pipeline bundles)
    latents/                    the DiT latent cache

These functions live in orchestration because they join what the domain packages may not import
from each other: the workspace layout and data versions, training, and evaluation (the held-out
evaluator of the VAE run). Bad input raises `TrainingDataError` / `ClipListError` /
`StageOrderError` with a message a user can act on.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestration.versioning import VersionStore
from orchestration.workspace import Workspace
from training.dit.config import DiTTrainConfig
from training.dit.records import ClipListError, load_clip_list, records_from_tables
from training.results import TrainResult
from training.tracking import TrackingSettings
from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem, TrainingDataError, clips_from_tier_tables, resolve_media_paths

STAGE_TABLES = ("clips", "tiers", "deduped_clips", "captions")  # what every DiT stage's clip list joins


def vae_checkpoint_dir(ws: Workspace) -> Path:
    return ws.checkpoints / "vae"


def vae_export_dir(ws: Workspace) -> Path:
    return ws.checkpoints / "vae_export"


def dit_checkpoint_root(ws: Workspace) -> Path:
    return ws.checkpoints / "dit"


# ---- the VAE --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VAETraining:
    """A workspace VAE run: the training result, what it trained on, where the export lies."""

    result: TrainResult
    media: int
    source: str
    export_dir: Path


def vae_training_media(
    ws: Workspace, data: Sequence[Path] | None = None, tier: str = "tier_256p", fallback: bool = False
) -> tuple[list[Path | MediaItem], str]:
    """(media, where they came from): `data`, else the tier's clips from the curation tables.

    With `fallback` (the CLI) a workspace without tables trains on its raw videos, else on the
    stand-in corpus it writes under `vae_standin/`.
    """
    if data:
        return [p for item in data for p in resolve_media_paths(item)], "--data"
    if not fallback or ws.table("tiers").exists():
        return list(clips_from_tier_tables(ws.tables, tier)), f"{tier} clips"
    if ws.raw.is_dir() and any(ws.raw.rglob("*.mp4")):
        return list(resolve_media_paths(ws.raw)), str(ws.raw)
    from training.vae.standin_corpus import write_standin_corpus

    standin = ws.home / "vae_standin"
    return list(write_standin_corpus(standin)), f"stand-in corpus ({standin})"


def train_vae_in_workspace(
    ws: Workspace,
    config: VAETrainConfig,
    tracking: TrackingSettings,
    *,
    data: Sequence[Path] | None = None,
    tier: str = "tier_256p",
    fallback: bool = False,
    data_version: str | None = None,
    max_steps: int | None = None,
    resume: bool = True,
    ray_address: str | None = None,
) -> VAETraining:
    """Train (or resume; `resume=False` starts over) the workspace VAE and export its EMA weights.

    `tracking` is the platform's (URI, artifacts, experiment prefix); the run logs to experiment
    `<experiment>-vae` with the held-out PSNR evaluator and sample grids, its data version
    `data_version` or a fingerprint of the media (a dataset input whose source is the tables
    folder or the first `--data` path). The export is registered as `videofoundry-vae@current`.
    """
    from evaluation.vae_benchmarks import HeldoutEvaluator
    from training.vae.run import VAEJob, data_fingerprint, train_vae

    media, source = vae_training_media(ws, data, tier, fallback)
    checkpoint_dir = vae_checkpoint_dir(ws)
    if not resume and checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)
    evaluator = HeldoutEvaluator(
        config.heldout_image_size, config.heldout_frames, config.heldout_size, config.heldout_items
    )
    run_tracking = dataclasses.replace(
        tracking,
        experiment=f"{tracking.experiment}-vae",
        data_version=data_version or data_fingerprint(media),
        data_source=str(Path(data[0]).resolve()) if data else str(ws.tables),
    )
    job = VAEJob(config, media, checkpoint_dir, run_tracking, evaluator, evaluator.samples, max_steps, resume)
    result = train_vae(job, vae_export_dir(ws), ray_address)
    return VAETraining(result, len(media), source, vae_export_dir(ws))


# ---- DiT data versions -------------------------------------------------------------------------
def tables_data_version(ws: Workspace, store: VersionStore, data: str) -> str:
    """Latest committed versions of the tables a stage reads; 'unversioned' (→ a content fingerprint) if none."""
    names = [*STAGE_TABLES, *(["sft_set"] if data == "sft_set" else [])]
    refs = []
    for name in names:
        path = ws.table(name)
        history = store.history(path) if path.exists() else []
        if history:
            refs.append(history[-1].ref)
    return ";".join(refs) or "unversioned"


def trained_vae_path(ws: Workspace, vae: Path | None = None, required: bool = False) -> Path | None:
    """`vae`, else the workspace's exported VAE, else None (a seed-0 stand-in VAE) unless `required`."""
    if vae is not None:
        if not vae.exists():
            raise TrainingDataError(f"--vae {vae} does not exist")
        return vae
    exported = vae_export_dir(ws)
    if (exported / "config.json").is_file():
        return exported
    if required:
        raise TrainingDataError(f"no trained VAE at {exported}; run `videofoundry train-vae` or pass --vae")
    return None


# ---- DiT stages ----------------------------------------------------------------------------------
def cache_latents_in_workspace(ws: Workspace, config: DiTTrainConfig) -> dict[str, dict]:
    """Fill the latent cache of every stage from the workspace tables; {stage: counts and buckets}."""
    from training.dit.stages import cache_latents

    vae = trained_vae_path(ws)
    return {
        spec.name: cache_latents(
            config,
            spec.name,
            records_from_tables(ws.tables, spec.data),
            ws.latents,
            vae,
            progress=False,
        )
        for spec in config.stages
    }


def train_dit_stage_in_workspace(
    ws: Workspace,
    config: DiTTrainConfig,
    stage: str,
    tracking: TrackingSettings,
    *,
    clips: Path | None = None,
    vae: Path | None = None,
    data_version: str | None = None,
    resume: bool = True,
    restart_if_plan_changed: bool = False,
    launcher: Literal["auto", "local", "ray"] = "auto",
    ray_address: str | None = None,
) -> TrainResult:
    """Train one DiT stage from the previous stage's final checkpoint, continuing its own checkpoints
    unless `resume` is False (`training.dit.stages.prepare_stage` says when a changed plan restarts).

    Clips: the JSON list `clips`, else the stage's data from the workspace tables. The VAE: `vae`,
    else the workspace export, else (where `config.standin_vae` allows) a seed-0 stand-in. The run logs to
    experiment `<experiment>-dit` as a child of the lineage's parent run (metrics at the global
    step) and registers each checkpoint in `tracking.registered_model`.
    """
    from training.dit.run import train_dit_stage
    from training.dit.stages import prepare_stage

    data = config.stage(stage).data
    records = load_clip_list(clips) if clips is not None else records_from_tables(ws.tables, data)
    if not records:
        raise ClipListError(f"stage {stage}: no clips in '{data}'")
    run_tracking = dataclasses.replace(
        tracking,
        experiment=f"{tracking.experiment}-dit",
        data_version=data_version or "unversioned",
        data_source=str((clips or ws.tables).resolve()),
    )
    vae_path = trained_vae_path(ws, vae, required=not config.standin_vae)
    plan = prepare_stage(
        config, stage, records, dit_checkpoint_root(ws), ws.latents, run_tracking,
        vae_path=vae_path, resume=resume, restart_if_plan_changed=restart_if_plan_changed, progress=False,
    )  # fmt: skip
    return train_dit_stage(plan, launcher, ray_address)

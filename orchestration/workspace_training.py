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
from each other: the curation tables and captions (clip records), training, and evaluation (the
held-out evaluator of the VAE run). Bad input raises `TrainingDataError` / `ClipListError` /
`StageOrderError` with a message a user can act on.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from curation.captions import render_for_clip
from curation.captions.schema import StructuredCaption
from media.tables import read_table
from orchestration.versioning import VersionStore
from orchestration.workspace import Workspace
from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import ClipRecord
from training.dit.records import ClipListError, load_clip_list
from training.results import TrainResult
from training.tracking import TrackingSettings
from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem, TrainingDataError, clips_from_tier_tables, resolve_media_paths

TIER_KEYS = ("tier_256p", "tier_360p", "tier_540p", "tier_720p")
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
    if not fallback or (ws.tables / "tiers.parquet").exists():
        return list(clips_from_tier_tables(ws.tables, ws.raw, tier)), f"{tier} clips"
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
    `data_version` or a fingerprint of the media.
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
    )
    job = VAEJob(config, media, checkpoint_dir, run_tracking, evaluator, evaluator.samples, max_steps, resume)
    result = train_vae(job, vae_export_dir(ws), ray_address)
    return VAETraining(result, len(media), source, vae_export_dir(ws))


# ---- DiT clip lists ----------------------------------------------------------------------------
def _table_rows(tables: Path, name: str) -> list[dict]:
    file = tables / f"{name}.parquet"
    path = file if file.exists() else tables / name
    if not path.exists():
        raise ClipListError(f"table {name} not found under {tables}; materialize the `{name}` asset first")
    return read_table(path).to_pylist()


def records_from_tables(
    tables: Path, media_root: Path, data: str, sft_clip_ids: Collection[str] | None = None
) -> list[ClipRecord]:
    """ClipRecords of `data` (a tier key or ``sft_set``) joined from the curation tables.

    Per clip: `clips` (source video, frame range), `tiers` (membership of the stage's tier),
    `deduped_clips` (kept clips and their `balance_weight`) and `captions` (the training prompt,
    rendered with epoch 0 of `render_for_clip`, so it is stable; failed captions are left out).
    `sft_set` is the clips of the `sft_set` table (people's accepted clips) or `sft_clip_ids`.
    """
    if data == "sft_set":
        if sft_clip_ids is None:
            sft_clip_ids = [r["clip_id"] for r in _table_rows(tables, "sft_set")]
        tier, wanted = "tier_720p", set(sft_clip_ids)
    elif data in TIER_KEYS:
        tier, wanted = data, None
    else:
        raise ClipListError(f"unknown data key {data!r}; use one of {', '.join(TIER_KEYS)} or sft_set")
    # The SFT set is people's choice among top-tier candidates: membership is the choice itself.
    in_tier = (
        wanted if wanted is not None else {r["clip_id"] for r in _table_rows(tables, "tiers") if r[tier]}
    )
    weights = {
        r["clip_id"]: (r["balance_weight"] or 1.0) for r in _table_rows(tables, "deduped_clips") if r["keep"]
    }
    prompts = {}
    for row in _table_rows(tables, "captions"):
        if row["status"] != "failed" and row["caption_json"]:
            caption = StructuredCaption.model_validate_json(row["caption_json"])
            prompts[row["clip_id"]] = render_for_clip(caption, row["clip_id"], epoch=0)
    records = []
    for clip in _table_rows(tables, "clips"):
        clip_id = clip["clip_id"]
        if clip_id not in in_tier or clip_id not in weights or clip_id not in prompts:
            continue
        source = Path(clip["source_path"])
        records.append(
            ClipRecord(
                clip_id,
                source if source.is_absolute() else media_root / source,
                int(clip["start_frame"]),
                int(clip["end_frame"]),
                prompts[clip_id],
                float(weights[clip_id]),
            )
        )
    return records


def tables_data_version(ws: Workspace, store: VersionStore, data: str) -> str:
    """Latest committed versions of the tables a stage reads; 'unversioned' (→ a content fingerprint) if none."""
    names = [*STAGE_TABLES, *(["sft_set"] if data == "sft_set" else [])]
    refs = []
    for name in names:
        path = ws.table(name) if ws.table(name).exists() else ws.tables / name
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
            records_from_tables(ws.tables, ws.raw, spec.data),
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
    require_vae: bool = False,
    data_version: str | None = None,
    resume: bool = False,
    launcher: Literal["auto", "local", "ray"] = "auto",
    ray_address: str | None = None,
) -> TrainResult:
    """Train one DiT stage from the previous stage's final checkpoint (`resume`: continue it).

    Clips: the JSON list `clips`, else the stage's data from the workspace tables. The VAE: `vae`,
    else the workspace export, else (unless `require_vae`) a seed-0 stand-in. The run logs to
    experiment `<experiment>-dit` and registers each checkpoint in `tracking.registered_model`.
    """
    from training.dit.run import train_dit_stage
    from training.dit.stages import prepare_stage

    data = config.stage(stage).data
    records = load_clip_list(clips) if clips is not None else records_from_tables(ws.tables, ws.raw, data)
    if not records:
        raise ClipListError(f"stage {stage}: no clips in '{data}'")
    run_tracking = dataclasses.replace(
        tracking, experiment=f"{tracking.experiment}-dit", data_version=data_version or "unversioned"
    )
    vae_path = trained_vae_path(ws, vae, require_vae)
    plan = prepare_stage(
        config, stage, records, dit_checkpoint_root(ws), ws.latents, run_tracking,
        vae_path=vae_path, resume=resume, progress=False,
    )  # fmt: skip
    return train_dit_stage(plan, launcher, ray_address)

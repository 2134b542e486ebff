"""Running the stage manifest: prepare a stage in the driver, train it in one or many workers.

`prepare_stage` (driver, once): finds the previous stage's result (its final checkpoint, MLflow run
and registry version: the stage starts from that checkpoint, links its run to that run as parent
and tags `parent_version`), fills the latent cache for the stage's buckets and writes a `StagePlan`
(`<root>/<stage>/plan.json`). `train_stage` (each worker) reads the plan, builds a `DiTTrainer`
on the given backend and trains; rank 0 writes `<root>/<stage>/stage_result.json` atomically when
the stage is done. `run_stage` does both in this process.

Layout under the DiT checkpoint root (e.g. `<workspace>/checkpoints/dit`):

    <stage>/plan.json           what the workers train on
    <stage>/step_<k>/           training checkpoints (training.checkpointing), each with transformer/
    <stage>/stage_result.json   StageResult of the finished stage (the next stage reads it)
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.checkpoints import load_vae
from model.dit_config import DiTConfig
from model.text import TextEncoder, build_text_encoder
from model.vae import CausalVAE3D, VAEConfig
from training.backends import Backend
from training.dit.buckets import Bucket, SampleRef
from training.dit.bundle import text_encoder_config
from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import EMPTY_PROMPT_FILE, CacheStats, ClipRecord, LatentCache
from training.dit.trainer import DiTTrainer, StageResult, StageTracking

PLAN_FILE = "plan.json"
RESULT_FILE = "stage_result.json"


class StageOrderError(RuntimeError):
    """A stage was asked for before the stage it starts from finished."""


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(tmp, path)


def make_text_encoder(config: DiTTrainConfig) -> TextEncoder:
    """The stage's text encoder (see `training.dit.bundle.text_encoder_config`)."""
    return build_text_encoder(text_encoder_config(config))


def check_text_dims(config: DiTTrainConfig, text_encoder: TextEncoder) -> None:
    """The encoder's widths must be the DiT's text_states_dim / text_pooled_dim."""
    dit = DiTConfig.preset(config.dit_preset, **config.dit_overrides)
    got, want = (text_encoder.states_dim, text_encoder.pooled_dim), (dit.text_states_dim, dit.text_pooled_dim)
    if got != want:
        raise ValueError(
            f"text encoder {config.text_encoder!r} gives widths {got} but DiT preset {config.dit_preset!r} "
            f"expects {want}; pick a matching text_encoder / dit_preset pair"
        )


def make_vae(config: DiTTrainConfig, vae_path: str | Path | None) -> CausalVAE3D:
    """The trained VAE at `vae_path`, or (tests, no VAE yet) the config's preset with seed-0 weights."""
    if vae_path is not None:
        return load_vae(vae_path).eval()
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    vae = CausalVAE3D(VAEConfig.preset(config.vae_preset, **config.vae_overrides)).eval()
    torch.set_rng_state(generator_state)
    return vae


@dataclass
class StagePlan:
    """Everything a worker needs to train one stage (JSON-serialisable)."""

    stage: str
    config: DiTTrainConfig
    samples: list[SampleRef]
    empty_prompt_path: Path
    checkpoint_dir: Path
    init_from: Path | None
    tracking: StageTracking
    vae_path: Path | None
    sample_posterior: bool
    cache_stats: dict[str, Any]

    def save(self, path: Path) -> Path:
        data = {
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
        _atomic_json(path, data)
        return path

    @classmethod
    def load(cls, path: Path) -> StagePlan:
        data = json.loads(Path(path).read_text())
        tracking = dict(data["tracking"])
        if tracking.get("artifact_location"):
            tracking["artifact_location"] = Path(tracking["artifact_location"])
        return cls(
            stage=data["stage"],
            config=DiTTrainConfig.model_validate(data["config"]),
            samples=[SampleRef(s["key"], Bucket(**s["bucket"]), float(s["weight"])) for s in data["samples"]],
            empty_prompt_path=Path(data["empty_prompt_path"]),
            checkpoint_dir=Path(data["checkpoint_dir"]),
            init_from=Path(data["init_from"]) if data["init_from"] else None,
            tracking=StageTracking(**tracking),
            vae_path=Path(data["vae_path"]) if data["vae_path"] else None,
            sample_posterior=bool(data["sample_posterior"]),
            cache_stats=data["cache_stats"],
        )


def read_stage_result(root: Path, stage: str) -> dict[str, Any] | None:
    path = Path(root) / stage / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def prepare_stage(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    checkpoint_root: Path,
    latent_root: Path,
    tracking: StageTracking,
    *,
    vae_path: Path | None = None,
    vae: CausalVAE3D | None = None,
    text_encoder: TextEncoder | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Chain to the previous stage, fill the latent cache, write the plan; returns the plan path.

    Without `resume` the stage's earlier checkpoints are deleted (a fresh start).
    """
    spec = config.stage(stage)
    previous = config.previous_stage(stage)
    init_from = None
    tracking = dataclasses.replace(tracking)
    if previous is not None:
        found = read_stage_result(checkpoint_root, previous)
        if found is None or not found.get("checkpoint"):
            raise StageOrderError(
                f"stage {stage} starts from {previous}'s final checkpoint, but {checkpoint_root / previous} "
                f"holds no finished run; train {previous} first"
            )
        init_from = Path(found["checkpoint"])
        tracking.parent_run_id = tracking.parent_run_id or found.get("run_id")
        tracking.parent_version = tracking.parent_version or found.get("model_version")
    if not records:
        raise ValueError(f"stage {stage}: the clip list for '{spec.data}' is empty")
    vae = vae if vae is not None else make_vae(config, vae_path)
    text_encoder = text_encoder if text_encoder is not None else make_text_encoder(config)
    check_text_dims(config, text_encoder)
    cache = LatentCache(latent_root, vae, text_encoder, aspect_ratios=config.aspect_ratios)
    samples, stats = cache.build(records, spec, progress=progress)
    stage_dir = Path(checkpoint_root) / stage
    if not resume and stage_dir.exists():
        shutil.rmtree(stage_dir)
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
    return plan.save(stage_dir / PLAN_FILE)


def _stats_dict(stats: CacheStats, cache: LatentCache) -> dict[str, Any]:
    return {
        "encoded": stats.encoded,
        "reused": stats.reused,
        "skipped": stats.skipped,
        "vae_version": cache.vae_version,
        "encoder_version": cache.encoder_version,
    }


def train_stage(
    plan_path: Path,
    backend: Backend | None = None,
    resume: bool = True,
    step_hook: Callable[[int], None] | None = None,
    with_samples: bool = True,
) -> StageResult:
    """Train the planned stage on `backend` (every worker calls this); rank 0 writes the result file."""
    from safetensors.torch import load_file

    plan = StagePlan.load(plan_path)
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
    result = trainer.train(resume=resume)
    if backend.is_main:
        payload = {
            **result.to_json(),
            "data_version": plan.tracking.data_version,
            "cache": plan.cache_stats,
            "finished_at": time.time(),
        }
        _atomic_json(plan.checkpoint_dir / RESULT_FILE, payload)
    return result


def run_stage(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    checkpoint_root: Path,
    latent_root: Path,
    tracking: StageTracking,
    *,
    vae_path: Path | None = None,
    resume: bool = False,
    backend: Backend | None = None,
    progress: bool = True,
) -> StageResult:
    """prepare_stage + train_stage in this process (one device, or the caller's backend)."""
    plan = prepare_stage(
        config,
        stage,
        records,
        checkpoint_root,
        latent_root,
        tracking,
        vae_path=vae_path,
        resume=resume,
        progress=progress,
    )
    return train_stage(plan, backend=backend, resume=resume)


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

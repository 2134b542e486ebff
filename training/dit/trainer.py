"""The DiT training loop of one progressive stage (flow matching on cached latents).

Per optimizer step k of a stage: the bucket sampler yields the step's micro-batches (one bucket
each; one per resolution in `image_mixscale`); each is loaded from the latent cache, text-dropped,
and scored by the flow-matching loss; their sample-weighted mean is one backward + clipped AdamW
step (warm-up schedule), then the EMA update. All randomness of step k derives from
(seed, stage, rank, k), and checkpoints carry model, EMA, optimizer, scheduler, RNG states and the
sampler position (= k), so a resumed stage replays exactly what an uninterrupted one would (tested,
also after kill -9).

The same loop runs in one process and on every DDP / DeepSpeed worker (`training.backends`;
launched by `training.dit.run` through `training.launch`). Activation checkpointing and precision
are applied from outside the model. MLflow (rank 0): the configs as params (+ YAML artifacts), the
data version as a dataset input, metrics (also per bucket) at the lineage's global step (the stage's
step + `tracking.global_step_offset`; loss, grad norm and lr mirrored into the lineage's parent
run), the per-bucket loss curve as a step-keyed image, sample videos from fixed prompts, and per
checkpoint one LoggedModel (`training.logged_models`, its step metrics linked) registered as a
version. Each checkpoint
holds the EMA weights as a pipeline bundle (`model.bundle`: transformer/, plus vae/ and
pipeline.json when the trainer has the VAE) and, in its metadata, the stage length, MLflow run and
recent loss the next stage chains from (training.dit.stages.finished_stage).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from media.threads import cpu_threads
from model.bundle import PIPELINE_FILE, TRANSFORMER_DIR, VAE_DIR, save_pipeline
from model.checkpoints import save_model
from model.dit import HunyuanDiT, compile_blocks
from model.dit_config import DiTConfig
from model.text import TextEncoder
from model.vae import CausalVAE3D
from training.backends import Backend, OptimizerSettings, SteppedModel, refuse_partitioned_weights
from training.checkpointing import (
    CheckpointManager,
    load_checkpoint,
    load_training_checkpoint,
    read_meta,
    save_training_checkpoint,
)
from training.dit.buckets import Bucket, BucketSampler, SampleRef, micro_batch_sizes
from training.dit.config import STAGE_ORDER, DiTTrainConfig
from training.dit.encoders import text_encoder_config
from training.dit.latent_cache import ShardCache, load_batch
from training.dit.loss import drop_text, flow_matching_loss
from training.dit.plots import plot_bucket_losses
from training.dit.registry import (
    REGISTERED_MODEL,
    code_version,
    config_tags,
    register_checkpoint,
    versions_of_run,
)
from training.dit.sampling import decode_to_frames, sample_latents
from training.ema import EMA
from training.logged_models import PIPELINE_FACE, log_checkpoint_model
from training.parallel import parallelize_dit
from training.results import TrainResult
from training.tracking import RunTracker, TrackingSettings

log = logging.getLogger(__name__)
RECENT_LOSSES = 10  # the result's final_loss and bucket_losses average this many last steps
LINEAGE_METRICS = ("loss", "grad_norm", "lr")  # mirrored into the lineage's parent run


def _step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


class DiTTrainer:
    """One stage of DiT training (see module docstring)."""

    def __init__(
        self,
        config: DiTTrainConfig,
        stage: str,
        samples: Sequence[SampleRef],
        empty_prompt: dict[str, torch.Tensor],
        checkpoint_dir: str | Path,
        *,
        init_from: Path | None = None,
        tracking: TrackingSettings | None = None,
        backend: Backend | None = None,
        vae: CausalVAE3D | None = None,
        text_encoder: TextEncoder | None = None,
        sample_posterior: bool = True,
        step_hook: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.spec = config.stage(stage)
        self.stage_index = STAGE_ORDER.index(stage)
        self.backend = backend or Backend(precision=config.precision)
        refuse_partitioned_weights(self.backend, "DiT")
        self.tracking = tracking or TrackingSettings()
        self.vae, self.text_encoder = vae, text_encoder
        self.sample_posterior = sample_posterior
        self.shard_cache = ShardCache(config.shard_cache_mb << 20)  # the stage revisits its shards
        self.step_hook = step_hook
        self.empty_prompt = empty_prompt
        self.checkpoints = CheckpointManager(checkpoint_dir, keep_last=config.keep_last)

        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.dit_config = DiTConfig.preset(config.dit_preset, **config.dit_overrides)
        model = HunyuanDiT(self.dit_config)
        self.init_from = init_from
        previous = load_checkpoint(init_from) if init_from is not None else None
        if previous is not None:
            model.load_state_dict(previous.tensors["dit"])
        # Infrastructure applied from outside the model: sequence parallelism over the backend's
        # sequence group, recompute of each block in backward, regional compilation.
        if self.backend.sequence_parallel > 1:
            parallelize_dit(model, self.backend.sequence_group)
        model.gradient_checkpointing = config.activation_checkpointing
        model.checkpoint_policy = config.checkpoint_policy
        if config.compile_blocks:
            compile_blocks(model)
        optimizer = OptimizerSettings(
            self.spec.lr, config.betas, config.weight_decay, config.grad_clip, self.spec.warmup_steps
        )
        # Whole weights: the EMA starts from the fp32 model before a backend may cast it (DeepSpeed
        # bf16); sharded weights: from the shards, so the EMA is sharded the same way.
        partitioned = self.backend.partitions_parameters
        ema = None if partitioned else EMA(model, config.ema_decay)
        self.dit: SteppedModel = self.backend.wrap("dit", model, optimizer)
        self.ema = ema or EMA(self.dit.module, config.ema_decay)
        if previous is not None:
            self.ema.load_state_dict(
                previous.tensors["ema"], int(previous.trainer_state.get("ema_updates", 0))
            )
        buckets = sorted({s.bucket for s in samples})
        self.batch_sizes = micro_batch_sizes(
            buckets, config.tokens_per_micro_batch, config.max_micro_batch, config.bucket_batch_sizes
        )
        self.sampler = BucketSampler(
            samples,
            self.batch_sizes,
            self.spec.image_ratio,
            self.spec.mix_resolutions,
            seed=_step_seed(config.seed, self.stage_index) % (2**31),
            rank=self.backend.data_rank,
        )
        self.step = 0
        self.loss_history: dict[str, list[tuple[int, float]]] = {}  # bucket -> (step, loss)
        self.recent_losses: list[float] = []  # total loss of the last RECENT_LOSSES steps
        self.run_id: str | None = None
        self.model_versions: list[str] = []
        self.tracker = RunTracker.disabled()
        self.last_metrics: dict[str, float] = {}  # the last step's, linked to the checkpoint's model

    # ---- checkpoints -------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        return {
            "kind": "dit_training",
            "stage": self.spec.name,
            "steps": self.spec.steps,
            "run_id": self.run_id,
            "loss": float(np.mean(self.recent_losses)) if self.recent_losses else math.nan,
            "dit_config": self.dit_config.to_dict(),
            "train_config": self.config.model_dump(mode="json"),
            "data_version": self.tracking.data_version,
            "parent_version": self.tracking.parent_version,
            "init_from": str(self.init_from) if self.init_from else None,
            "world_size": self.backend.world_size,
            "sharding": self.config.sharding,
            "sequence_parallel": self.backend.sequence_parallel,
        }

    def _ema_model(self, ema_state: dict[str, torch.Tensor]) -> HunyuanDiT:
        """A single-device model holding the (whole) EMA weights, without sharding or SP hooks."""
        # A meta-device shell takes the EMA tensors without allocating a second model.
        with torch.device("meta"):
            export = HunyuanDiT(self.dit_config)
        export.load_state_dict(ema_state, assign=True)
        return export

    def _full_ema(self) -> dict[str, torch.Tensor]:
        """Collective where the backend shards weights: the whole EMA state dict."""
        return self.backend.full_state_dict(self.ema.state_dict())

    def _write_bundle(self, directory: Path, ema_state: dict[str, torch.Tensor]) -> None:
        """The EMA weights as transformer/ (+ vae/ and pipeline.json when the trainer has the VAE)."""
        export = self._ema_model(ema_state)
        if self.vae is None:
            save_model(export, directory / TRANSFORMER_DIR)
            return
        info = {"stage": self.spec.name, "data_version": self.tracking.data_version}
        if self.tracking.parent_version:
            info["parent_version"] = self.tracking.parent_version
        save_pipeline(directory, export, self.vae, text_encoder_config(self.config), info=info, replace=False)

    def save_checkpoint(self) -> Path | None:
        """Collective; rank 0 publishes `step_<k>/` atomically (+ registry version). Returns the path on rank 0."""
        state = {
            "step": self.step,
            "stage": self.spec.name,
            "sampler_position": {"seed": self.sampler.seed, "next_step": self.step},
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
            "loss_history": self.loss_history,
            "recent_losses": self.recent_losses,
            "mlflow_run_id": self.run_id,
        }
        ema_state = self._full_ema()
        path = save_training_checkpoint(
            self.checkpoints,
            self.backend,
            self.step,
            {"dit": self.dit},
            self.ema,
            state,
            self._metadata(),
            extra_writer=lambda directory: self._write_bundle(directory, ema_state),
            ema_full=ema_state,
        )
        if path is not None:
            self._register(path)
        self.backend.barrier()
        return path

    @property
    def global_step(self) -> int:
        """The step across the lineage's stages (the x axis of every logged metric)."""
        return self.tracking.global_step_offset + self.step

    def _register(self, path: Path) -> None:
        """The checkpoint as a LoggedModel at the global step (with the last step's metrics) and a
        registry version of it."""
        if not (self.tracker.enabled and self.tracker.run_id and self.tracking.uri):
            return
        whole = (path / VAE_DIR).is_dir()  # a whole pipeline bundle: what serving and pyfunc load
        parts = (
            {
                TRANSFORMER_DIR: path / TRANSFORMER_DIR,
                VAE_DIR: path / VAE_DIR,
                PIPELINE_FILE: path / PIPELINE_FILE,
            }
            if whole
            else {".": path / TRANSFORMER_DIR}
        )
        model_tags = {"stage": self.spec.name, "data_version": self.tracking.data_version}
        model_id = log_checkpoint_model(
            self.tracker.client, str(self.tracker.experiment_id), self.tracker.run_id,
            name=f"dit-{self.spec.name}-step{self.step}", step=self.global_step, parts=parts,
            params={"stage": self.spec.name, "step": self.step, "dit": self.dit_config.to_dict()},
            tags=model_tags, pyfunc=PIPELINE_FACE if whole else None,
        )  # fmt: skip
        if self.last_metrics:
            self.tracker.log_metrics(self.last_metrics, self.global_step, model_id=model_id)
        tags = {
            "stage": self.spec.name,
            "step": str(self.step),
            "global_step": str(self.global_step),
            "final": str(self.step >= self.spec.steps).lower(),
            "data_version": self.tracking.data_version,
            "code_version": code_version(),
            "parent_version": self.tracking.parent_version or "",
            "model_id": model_id,
            **config_tags(self.config.to_json()),
        }
        version = register_checkpoint(
            self.tracking.uri, model_id, self.tracker.run_id, tags, self._model_name
        )
        self.model_versions.append(version)
        self.tracker.set_tags({"last_model_version": version})

    @property
    def _model_name(self) -> str:
        return self.tracking.registered_model or REGISTERED_MODEL

    def load_checkpoint(self, directory: Path | None = None) -> bool:
        """Restore the latest (or given) checkpoint of this stage; False when there is none."""
        target = directory or self.checkpoints.latest()
        if target is None:
            return False
        stage = read_meta(target)["metadata"].get("stage")
        if stage != self.spec.name:
            raise ValueError(f"{target} belongs to stage {stage!r}, not {self.spec.name!r}")
        ckpt = load_training_checkpoint(self.checkpoints, self.backend, {"dit": self.dit}, self.ema, target)
        assert ckpt is not None
        rng = ckpt.trainer_state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        self.step = int(ckpt.trainer_state["sampler_position"]["next_step"])
        self.loss_history = {k: [tuple(p) for p in v] for k, v in ckpt.trainer_state["loss_history"].items()}  # type: ignore[misc]
        self.recent_losses = list(ckpt.trainer_state.get("recent_losses", []))
        self.run_id = ckpt.trainer_state.get("mlflow_run_id")
        return True

    # ---- one step ----------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        """Optimizer step `step`: returns {'loss', 'grad_norm', 'lr', 'samples', 'tokens', 'loss/<bucket>'}."""
        # Seeded by the data rank: the ranks of one sequence-parallel group draw the same noise.
        generator = torch.Generator().manual_seed(
            _step_seed(self.config.seed, self.stage_index, self.backend.data_rank, step)
        )
        micro_batches = self.sampler.step_batches(step)
        total = sum(len(mb.keys) for mb in micro_batches)
        loss = torch.zeros((), device=self.backend.device)
        metrics: dict[str, float] = {}
        tokens = 0
        for mb in micro_batches:
            batch = load_batch(mb.keys, generator, self.sample_posterior, self.shard_cache)
            batch = drop_text(batch, self.empty_prompt, self.config.text_dropout, generator)
            with self.backend.autocast():
                terms = flow_matching_loss(
                    self.dit.module,
                    batch,
                    self.config,
                    generator,
                    self.backend.device,
                    self.dit_config.guidance_embed,
                    first_frame_clean=self._draw_i2v(batch.latents.shape[2], generator),
                )
            loss = loss + terms.loss * (len(mb.keys) / total)
            metrics[f"loss/{mb.bucket.name}"] = float(terms.loss.detach())
            tokens += mb.bucket.tokens * len(mb.keys)
        grad_norm = self.dit.step(loss)
        self.ema.update(self.dit.module)
        metrics.update(
            loss=float(loss.detach()), grad_norm=grad_norm, lr=self.dit.lr(), samples=total, tokens=tokens
        )
        return metrics

    def _draw_i2v(self, latent_frames: int, generator: torch.Generator) -> bool:
        """Whether this micro-batch trains image-to-video (share `i2v_ratio` of video micro-batches;
        images and i2v_ratio 0 draw nothing, so T2V-only runs keep their random stream)."""
        if self.config.i2v_ratio <= 0 or latent_frames < 2:
            return False
        return bool(torch.rand((), generator=generator) < self.config.i2v_ratio)

    # ---- samples -------------------------------------------------------------------------------
    def _sample_bucket(self) -> Bucket:
        buckets = sorted(self.batch_sizes, key=lambda b: (b.is_image, -b.frames, b.resolution))
        return buckets[0]

    def make_samples(self, ema_state: dict[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
        """Sample videos (T, H, W, 3) uint8 per fixed prompt from the EMA weights (needs vae + text_encoder).

        `ema_state`: the whole EMA (`_full_ema`, gathered by every rank when the weights are sharded).
        """
        if self.vae is None or self.text_encoder is None or not self.config.sample_prompts:
            return {}
        model = self._ema_model(ema_state if ema_state is not None else self._full_ema())
        model = model.to(self.backend.device).eval()
        bucket = self._sample_bucket()
        prompts = list(self.config.sample_prompts)
        text = self.text_encoder.encode(prompts)
        guidance = self.config.guidance.scale if self.dit_config.guidance_embed else None
        latents = sample_latents(
            model,
            text,
            (self.dit_config.out_channels, *bucket.latent_shape),
            self.config.sample_steps,
            self.config.sample_shift,
            guidance,
            seed=self.config.seed,
        )
        frames = decode_to_frames(self.vae, latents)
        return {f"prompt{i}_{bucket.name}": frames[i] for i in range(len(prompts))}

    def _log_samples(self) -> None:
        """Every rank calls this (the EMA gather is collective when sharded); rank 0 samples."""
        sharded = self.backend.partitions_parameters and bool(self.config.sample_prompts)
        ema_state = self._full_ema() if sharded else None
        if not self.backend.is_main:
            return
        for name, frames in self.make_samples(ema_state).items():
            self.tracker.log_video(frames, f"step{self.step:07d}_{name}", fps=8, artifact_path="samples")

    def _log_plot(self) -> None:
        if not self.tracker.enabled or not self.loss_history:
            return
        directory = self.checkpoints.root / "plots"
        path = plot_bucket_losses(
            self.loss_history, directory / "loss_per_bucket.png", f"DiT {self.spec.name}"
        )
        self.tracker.log_image(path, "loss_per_bucket", self.global_step)

    # ---- the loop ------------------------------------------------------------------------------
    def _open_tracker(self) -> None:
        tags = {
            "stage": self.spec.name,
            "data_version": self.tracking.data_version,
            "code_version": code_version(),
            "parent_version": self.tracking.parent_version or "",
            "previous_stage_run": self.tracking.parent_run_id or "",
            "global_step_offset": str(self.tracking.global_step_offset),
        }
        if self.tracking.lineage_run_id:
            tags["mlflow.parentRunId"] = self.tracking.lineage_run_id
        self.tracker = RunTracker.for_run(
            self.tracking,
            is_main=self.backend.is_main,
            run_name=f"dit_{self.spec.name}",
            run_id=self.run_id,
            tags=tags,
        )
        if not self.tracker.enabled:
            return
        if self.tracking.lineage_run_id:
            self.tracker.set_status(self.tracking.lineage_run_id, "RUNNING")
        if self.run_id is not None and self.tracking.uri:  # resumed: the registry knows what was registered
            self.model_versions = versions_of_run(self.tracking.uri, self.run_id, self._model_name)
        if self.run_id is None:
            self.tracker.log_config("train", self.config.model_dump(mode="json"))
            self.tracker.log_config("dit", self.dit_config.to_dict())
            self.tracker.log_params(
                {
                    "stage": self.spec.model_dump(mode="json"),
                    "micro_batch_table": {b.name: n for b, n in sorted(self.batch_sizes.items())},
                    "world_size": self.backend.world_size,
                    "zero_stage": self.config.zero_stage,
                    "init_from": self.init_from,
                }
            )
            self.tracker.log_data_version(
                self.tracking.data_version, f"dit-{self.spec.data}", self.tracking.data_source
            )
        self.run_id = self.tracker.run_id

    def _log_step(self, metrics: dict[str, float]) -> None:
        """Rank 0: the step's metrics at the global step, the lineage's curves in its parent run."""
        self.tracker.log_metrics(metrics, self.global_step)
        if self.tracking.lineage_run_id:
            mirrored = {k: metrics[k] for k in LINEAGE_METRICS if k in metrics}
            self.tracker.log_metrics(mirrored, self.global_step, run_id=self.tracking.lineage_run_id)

    def train(self, resume: bool = True) -> TrainResult:
        """Run (or, with `resume`, continue) the stage to `spec.steps`; checkpoints every `checkpoint_every`.

        With `config.max_steps` the run stops (and checkpoints) at that step of the stage if it comes
        first; a later run continues from there. On CPU the stage uses `config.cpu_threads` torch
        threads, restored after it.
        """
        threads = self.config.cpu_threads if self.backend.device.type == "cpu" else None
        with cpu_threads(threads):
            return self._train(resume)

    def _train(self, resume: bool) -> TrainResult:
        resumed_from = self.step
        if resume and self.load_checkpoint():
            resumed_from = self.step
            log.info("stage %s: resumed at step %d", self.spec.name, self.step)
        self._open_tracker()
        cfg, spec = self.config, self.spec
        start, samples_seen = time.perf_counter(), 0
        path: Path | None = None
        end = min(spec.steps, cfg.max_steps) if cfg.max_steps is not None else spec.steps
        bar = tqdm(range(self.step, end), desc=f"dit {spec.name}", disable=not self.backend.is_main)
        for step in bar:
            metrics = self.backend.mean(self.train_step(step))
            self.step = step + 1
            samples_seen += int(metrics["samples"])
            for key, value in metrics.items():
                if key.startswith("loss/"):
                    self.loss_history.setdefault(key.removeprefix("loss/"), []).append((self.step, value))
            self.recent_losses = [*self.recent_losses, metrics["loss"]][-RECENT_LOSSES:]
            self.last_metrics = metrics
            if self.backend.is_main and (self.step % cfg.log_every == 0 or self.step == spec.steps):
                self._log_step(metrics)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self._log_samples()
            if self.step % cfg.checkpoint_every == 0 or self.step == end:
                path = self.save_checkpoint()
                if self.backend.checkpoint_reporter is not None:
                    self.backend.checkpoint_reporter({"step": self.step, "loss": metrics["loss"]}, path)
                if self.backend.is_main:
                    self._log_plot()
            if self.step_hook is not None:
                self.step_hook(self.step)
        elapsed = time.perf_counter() - start
        if path is None and self.backend.is_main:  # nothing to run (already finished): report the latest
            path = self.checkpoints.latest()
        if not cfg.sample_every or spec.steps % cfg.sample_every:
            self._log_samples()
        if self.backend.is_main:
            self.tracker.log_metrics(
                {"samples_per_second": samples_seen / max(elapsed, 1e-9)}, self.global_step
            )
            if (
                self.tracking.lineage_run_id
                and self.spec.name == cfg.stages[-1].name
                and self.step >= spec.steps
            ):
                self.tracker.set_status(self.tracking.lineage_run_id, "FINISHED")  # the lineage's last stage
            self.tracker.finish()
        return TrainResult(
            name=spec.name,
            steps_done=self.step,
            resumed_from=resumed_from,
            checkpoint=path,
            run_id=self.run_id,
            world_size=self.backend.world_size,
            samples_per_second=samples_seen * self.backend.world_size / max(elapsed, 1e-9),
            final_loss=float(np.mean(self.recent_losses)) if self.recent_losses else math.nan,
            last_loss=self.recent_losses[-1] if self.recent_losses else math.nan,
            data_version=self.tracking.data_version,
            model_versions=tuple(self.model_versions),
            bucket_losses={
                bucket: float(np.mean([loss for _, loss in points[-RECENT_LOSSES:]]))
                for bucket, points in self.loss_history.items()
            },
        )

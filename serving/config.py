"""Typed serving configuration: device, precision, memory options and request limits, per profile."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from model.vae_tiling import TILING_PRESETS
from serving.limits import RequestLimits

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ServingConfig:
    """How a pipeline runs.

    Attributes:
        profile: ``tiny`` (CPU, small limits) or ``paper`` (GPU, 720p × 129 frames).
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
        cpu_threads: torch intra-op threads for CPU work (None: torch's default). On a shared
            machine 1 is often much faster than oversubscribed cores.
    """

    profile: str = "tiny"
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
    limits: RequestLimits = field(default_factory=RequestLimits.tiny)
    cache_dir: str | None = None
    default_fps: float = 24.0
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} must be one of {sorted(DTYPES)}")
        if self.vae_tile_preset is not None and self.vae_tile_preset not in TILING_PRESETS:
            raise ValueError(
                f"vae_tile_preset {self.vae_tile_preset!r} must be one of {sorted(TILING_PRESETS)} or None"
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

    @classmethod
    def tiny(cls, **overrides: Any) -> ServingConfig:
        """CPU demo defaults: float32, no offload, tiny limits."""
        return dataclasses.replace(cls(), **overrides)

    @classmethod
    def paper(cls, **overrides: Any) -> ServingConfig:
        """One 80 GB GPU: bf16, CPU offload between stages, 720p × 129-frame limits, compiled DiT
        blocks, the "balanced" VAE tiling (2.3x diffusers' decode speed in less memory)."""
        base = cls(
            profile="paper",
            dtype="bfloat16",
            cpu_offload=True,
            limits=RequestLimits.paper(),
            vae_tile_preset="balanced",
            compile_blocks=True,
        )
        return dataclasses.replace(base, **overrides)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ServingConfig:
        presets = {"tiny": cls.tiny, "paper": cls.paper}
        if name not in presets:
            raise ValueError(f"unknown serving profile {name!r}; choose one of {sorted(presets)}")
        return presets[name](**overrides)


def serving_config(profile: str, cache_dir: str | None = None, **overrides: Any) -> ServingConfig:
    """The profile's `ServingConfig` (the CLI, the demo and the evaluation assets alike).

    `overrides` are ServingConfig fields; None values are ignored, and an explicit `vae_tile_size`
    replaces the profile's tiling preset. Raises ValueError for an unknown profile or a bad value.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    if "vae_tile_size" in given:
        given["vae_tile_preset"] = None
    return ServingConfig.preset(profile, cache_dir=cache_dir, **given)

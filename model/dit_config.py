"""Typed configuration and named presets of the HunyuanVideo diffusion transformer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from model.presets import PresetConfig

IMAGE_CONDITIONS = (None, "token_replace", "latent_concat")


@dataclass(frozen=True)
class DiTConfig(PresetConfig):
    """Architecture of `model.dit.HunyuanDiT` (all figures of SPEC.md §3).

    Attributes:
        in_channels: latent channels of x (16; 33 for ``latent_concat`` I2V = noisy 16 + image 16 + mask 1).
        out_channels: channels of the predicted velocity (16).
        hidden_size: model width D; must equal num_heads * head_dim.
        num_heads: attention heads; head_dim = hidden_size / num_heads must equal sum(rope_dims).
        depth_double: dual-stream blocks (separate weights per modality, joint attention).
        depth_single: single-stream blocks (fused linear1 = QKV + MLP-in, parallel linear2).
        depth_refiner: bidirectional token-refiner blocks over the LLM text states.
        mlp_ratio: MLP hidden width / D.
        patch_size: (pt, ph, pw) of the Conv3d patch embedding.
        text_states_dim: width of the LLM hidden states fed as `text_states`.
        text_pooled_dim: width of the pooled text vector (CLIP-L: 768).
        rope_dims: RoPE channels per head for the (t, h, w) axes; each even.
        rope_theta: RoPE base.
        guidance_embed: add an embedding of the (distilled) guidance scale × 1000 to the conditioning.
        image_condition: None (T2V), ``token_replace`` or ``latent_concat`` (I2V modes).
        attention_backend: ``sdpa`` | ``flash`` | ``reference`` (see model.attention).
    """

    in_channels: int = 16
    out_channels: int = 16
    hidden_size: int = 3072
    num_heads: int = 24
    depth_double: int = 20
    depth_single: int = 40
    depth_refiner: int = 2
    mlp_ratio: float = 4.0
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_states_dim: int = 4096
    text_pooled_dim: int = 768
    rope_dims: tuple[int, int, int] = (16, 56, 56)
    rope_theta: float = 256.0
    guidance_embed: bool = True
    image_condition: str | None = None
    attention_backend: str = "sdpa"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if sum(self.rope_dims) != self.head_dim or any(d % 2 for d in self.rope_dims):
            raise ValueError(f"rope_dims {self.rope_dims} must be even and sum to head_dim {self.head_dim}")
        if self.image_condition not in IMAGE_CONDITIONS:
            raise ValueError(f"image_condition {self.image_condition!r} must be one of {IMAGE_CONDITIONS}")
        if self.image_condition == "latent_concat" and self.in_channels != 2 * self.out_channels + 1:
            raise ValueError("latent_concat needs in_channels = 2 * out_channels + 1 (noisy + image + mask)")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"DiTConfig got unknown fields {sorted(unknown)}")
        values = dict(data)
        for key in ("patch_size", "rope_dims"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


DiTConfig.PRESETS = {
    # CPU tests: forward in milliseconds. Text dims match the `tiny-random` text encoder.
    "tiny": DiTConfig(
        hidden_size=64,
        num_heads=2,
        depth_double=1,
        depth_single=1,
        depth_refiner=1,
        text_states_dim=32,
        text_pooled_dim=16,
        rope_dims=(8, 12, 12),
    ),
    # Embedded default: text dims match the offline encoders (SmolLM2-135M 576, MiniLM-L6 384).
    "small": DiTConfig(
        hidden_size=384,
        num_heads=6,
        depth_double=2,
        depth_single=4,
        text_states_dim=576,
        text_pooled_dim=384,
        rope_dims=(16, 24, 24),
    ),
    "base": DiTConfig(
        hidden_size=1536,
        num_heads=12,
        depth_double=10,
        depth_single=20,
        text_states_dim=576,
        text_pooled_dim=384,
    ),
    # The benchmark's training-step model: full width, 4 dual + 8 single blocks.
    "bench-4x8": DiTConfig(depth_double=4, depth_single=8),
    # Released HYVideo-T/2-cfgdistill: ≈12.8 B parameters.
    "hunyuan-13b": DiTConfig(),
}

"""Parameter and FLOP counts of `model.dit.HunyuanDiT`, computed from its config (no model built).

Used by the scaling laws: N is `dit_param_count(config)` and the compute of a run is
`dit_flops(config, …).training` × samples seen.

Legend (per sample): V video tokens (after patching), L text tokens (real, after the model trims the
batch to its longest prompt), S = V + L, D width, M MLP width (D · mlp_ratio), C_t / C_p text-state /
pooled widths, C_in / C_out latent channels, P = pt·ph·pw, T = 256 sinusoid channels.

A FLOP here is one multiply or one add of a matrix product: a (m × k) @ (k × n) product costs
2·m·k·n. Only matrix products are counted (linears, the patch Conv3d, QKᵀ and A·V); norms, RoPE,
modulation arithmetic, activations and softmax are left out, as `torch.utils.flop_counter` does.

Forward FLOPs per sample:

    patch embed      2·V·C_in·P·D
    final layer      2·V·D·P·C_out                      + 2·D·2D  (adaLN, once per sample)
    refiner input    2·L·C_t·D
    refiner block    2·L·(3D² + D² + 2·4D²) + 4·L²·D     + 2·D·2D  (adaLN)
    double block     2·(V + L)·(3D² + D² + 2·D·M) + 4·S²·D + 2·2·D·6D (img and txt modulation)
    single block     2·S·(D·(3D + M) + (D + M)·D) + 4·S²·D  + 2·D·3D
    conditioning     2·(T·D + D²) per timestep embedder (time, guidance, refiner's time)
                     + 2·(C_p·D + D²) (pooled text) + 2·(C_t·D + D²) (refiner's pooled states)

Attention costs 4·S²·D per block and sample: QKᵀ (2·S²·Dh per head) and A·V (the same), over D/Dh
heads. I2V ``token_replace`` adds one more time and pooled-text embedding and one more modulation
per block (the t = 0 conditioning of the clean first frame).

Backward: every matrix product costs twice its forward (the gradient of its input and of its
weight), except the layers whose input is data (patch embed, refiner input, the first linear of each
embedder): their input needs no gradient, so they cost once. Gradient checkpointing would add one
more forward; it is not counted (these are model FLOPs, not hardware FLOPs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from model.dit_config import DiTConfig

SINUSOID_DIM = 256  # model.dit_layers.TimestepEmbedder's frequency channels
REFINER_MLP_RATIO = 4  # model.dit_layers.TokenRefiner builds its blocks with mlp_ratio 4.0


@dataclass(frozen=True)
class DiTFlops:
    """Matrix-product FLOPs of one pass of `HunyuanDiT` over a batch (see the module docstring)."""

    forward: int
    backward: int

    @property
    def training(self) -> int:
        """Forward + backward: the compute of one optimizer step on this batch."""
        return self.forward + self.backward


def _linear(rows: int, fan_in: int, fan_out: int) -> int:
    return 2 * rows * fan_in * fan_out


def dit_flops(config: DiTConfig, video_tokens: int, text_tokens: int, batch: int = 1) -> DiTFlops:
    """FLOPs of `HunyuanDiT(config)` on `batch` samples of `video_tokens` + `text_tokens` tokens each.

    Args:
        config: the architecture.
        video_tokens: V, patch tokens per sample (see `video_token_count`), >= 1.
        text_tokens: L, real text tokens per sample (every sample the same length), >= 1.
        batch: samples.

    Returns:
        `DiTFlops` with forward and backward counts (the formula is in the module docstring).
    """
    if video_tokens < 1 or text_tokens < 1 or batch < 1:
        raise ValueError(
            f"video_tokens ({video_tokens}), text_tokens ({text_tokens}) and batch ({batch}) must be >= 1"
        )
    d, m = config.hidden_size, config.mlp_hidden
    v, n_text = video_tokens, text_tokens
    s = v + n_text
    patch = math.prod(config.patch_size)
    token_replace = config.image_condition == "token_replace"

    # Products whose input is data: their backward computes only the weight gradient.
    data_inputs = [
        _linear(v, config.in_channels * patch, d),  # patch embed (a Conv3d with stride = kernel)
        _linear(n_text, config.text_states_dim, d),  # refiner input embedder
        _linear(1, SINUSOID_DIM, d),  # time_in
        _linear(1, SINUSOID_DIM, d),  # refiner's t_embedder
        _linear(1, config.text_pooled_dim, d),  # vector_in
        _linear(1, config.text_states_dim, d),  # refiner's c_embedder on the pooled states
    ]
    if config.guidance_embed:
        data_inputs.append(_linear(1, SINUSOID_DIM, d))
    if token_replace:
        data_inputs += [_linear(1, SINUSOID_DIM, d), _linear(1, config.text_pooled_dim, d)]

    embedder_second_layers = 4 + int(config.guidance_embed) + 2 * int(token_replace)
    refiner_block = (
        _linear(n_text, d, 3 * d)
        + _linear(n_text, d, d)
        + 2 * _linear(n_text, d, REFINER_MLP_RATIO * d)
        + _linear(1, d, 2 * d)
    )
    modulations = 1 + int(token_replace)
    double_block = (
        _linear(s, d, 3 * d)
        + _linear(s, d, d)
        + 2 * _linear(s, d, m)
        + 2 * _linear(1, d, 6 * d)  # img_mod and txt_mod
        + (_linear(1, d, 6 * d) if token_replace else 0)  # img_mod on the t = 0 vector
    )
    single_block = _linear(s, d, 3 * d + m) + _linear(s, d + m, d) + modulations * _linear(1, d, 3 * d)
    weights = (
        embedder_second_layers * _linear(1, d, d)
        + config.depth_refiner * refiner_block
        + config.depth_double * double_block
        + config.depth_single * single_block
        + _linear(v, d, patch * config.out_channels)
        + _linear(1, d, 2 * d)  # final adaLN
    )
    attention = (
        4 * d * (config.depth_refiner * n_text**2 + (config.depth_double + config.depth_single) * s**2)
    )
    forward = sum(data_inputs) + weights + attention
    backward = sum(data_inputs) + 2 * (weights + attention)
    return DiTFlops(forward=batch * forward, backward=batch * backward)


def video_token_count(config: DiTConfig, latent_shape: tuple[int, int, int]) -> int:
    """Patch tokens of one latent of (T, H, W) frames/height/width; each must divide by the patch."""
    if any(n <= 0 or n % p for n, p in zip(latent_shape, config.patch_size, strict=True)):
        raise ValueError(
            f"latent shape {latent_shape} must be positive multiples of the patch {config.patch_size}"
        )
    return math.prod(n // p for n, p in zip(latent_shape, config.patch_size, strict=True))


def dit_param_count(config: DiTConfig) -> int:
    """Total parameters of `HunyuanDiT(config)`, embeddings included.

    The scaling laws use this total, as the report's model sizes (92 M … 13 B) do. Note that the
    per-sample modulation weights (18·D² per double block, 3·D² per single block) take part in the
    count but cost almost no FLOPs per token, so 6·N·D overstates this model's compute: use
    `dit_flops` for C.
    """
    d, m, dh = config.hidden_size, config.mlp_hidden, config.head_dim
    patch = math.prod(config.patch_size)

    def linear(fan_in: int, fan_out: int) -> int:
        return fan_in * fan_out + fan_out

    def embedder(fan_in: int) -> int:  # Linear -> SiLU -> Linear
        return linear(fan_in, d) + linear(d, d)

    refiner_block = (
        2 * 2 * d  # two LayerNorms (weight + bias)
        + linear(d, 3 * d)
        + linear(d, d)
        + linear(d, REFINER_MLP_RATIO * d)
        + linear(REFINER_MLP_RATIO * d, d)
        + linear(d, 2 * d)
    )
    refiner = (
        linear(config.text_states_dim, d)
        + embedder(SINUSOID_DIM)
        + embedder(config.text_states_dim)
        + config.depth_refiner * refiner_block
    )
    double_block = 2 * (
        linear(d, 6 * d) + linear(d, 3 * d) + 2 * dh + linear(d, d) + linear(d, m) + linear(m, d)
    )
    single_block = linear(d, 3 * d + m) + linear(d + m, d) + 2 * dh + linear(d, 3 * d)
    return (
        config.in_channels * patch * d
        + d  # patch embed Conv3d
        + refiner
        + embedder(SINUSOID_DIM)  # time_in
        + embedder(config.text_pooled_dim)  # vector_in
        + (embedder(SINUSOID_DIM) if config.guidance_embed else 0)
        + config.depth_double * double_block
        + config.depth_single * single_block
        + linear(d, patch * config.out_channels)
        + linear(d, 2 * d)  # final adaLN
    )

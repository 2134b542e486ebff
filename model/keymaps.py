"""State-dict key mapping between the official HunyuanVideo layout (our native names) and diffusers'.

Official -> diffusers (what diffusers' own converter does, inverted here):
- fused QKV (`img_attn_qkv`, `txt_attn_qkv`, refiner `self_attn_qkv`) <-> separate to_q/to_k/to_v;
- single-block `linear1` <-> to_q, to_k, to_v, proj_mlp (split sizes D, D, D, mlp_hidden);
- `final_layer.adaLN_modulation.1` halves (shift, scale) <-> `norm_out.linear` halves (scale, shift).
The VAE's keys are identical in both layouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from model.dit_config import DiTConfig
from model.vae import VAEConfig


@dataclass(frozen=True)
class KeyGroup:
    """One official tensor and the diffusers tensors it is made of (concatenated along dim 0)."""

    official: str
    diffusers: tuple[str, ...]
    swap_halves: bool = False


def _linear(official: str, diffusers: str | list[str]) -> list[KeyGroup]:
    parts = [diffusers] if isinstance(diffusers, str) else diffusers
    return [KeyGroup(f"{official}.{p}", tuple(f"{d}.{p}" for d in parts)) for p in ("weight", "bias")]


def _norm(official: str, diffusers: str) -> list[KeyGroup]:
    return [KeyGroup(f"{official}.weight", (f"{diffusers}.weight",))]


# Per repeated block: official sub-key -> diffusers sub-key(s) (several are concatenated along dim 0).
# LINEARS rows carry a weight and a bias (LayerNorms too), NORMS rows (the QK RMSNorms) a weight only.
_QKV = ("attn.to_q", "attn.to_k", "attn.to_v")
_REFINER_LINEARS: dict[str, str | tuple[str, ...]] = {
    "norm1": "norm1",
    "self_attn_qkv": _QKV,
    "self_attn_proj": "attn.to_out.0",
    "norm2": "norm2",
    "mlp.fc1": "ff.net.0.proj",
    "mlp.fc2": "ff.net.2",
    "adaLN_modulation.1": "norm_out.linear",
}
_DOUBLE_LINEARS: dict[str, str | tuple[str, ...]] = {
    "img_mod.linear": "norm1.linear",
    "txt_mod.linear": "norm1_context.linear",
    "img_attn_qkv": _QKV,
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "img_attn_proj": "attn.to_out.0",
    "txt_attn_proj": "attn.to_add_out",
    "img_mlp.fc1": "ff.net.0.proj",
    "img_mlp.fc2": "ff.net.2",
    "txt_mlp.fc1": "ff_context.net.0.proj",
    "txt_mlp.fc2": "ff_context.net.2",
}
_DOUBLE_NORMS = {
    "img_attn_q_norm": "attn.norm_q",
    "img_attn_k_norm": "attn.norm_k",
    "txt_attn_q_norm": "attn.norm_added_q",
    "txt_attn_k_norm": "attn.norm_added_k",
}
_SINGLE_LINEARS: dict[str, str | tuple[str, ...]] = {
    "linear1": (*_QKV, "proj_mlp"),
    "linear2": "proj_out",
    "modulation.linear": "norm.linear",
}
_SINGLE_NORMS = {"q_norm": "attn.norm_q", "k_norm": "attn.norm_k"}


def _blocks(
    official: str,
    diffusers: str,
    count: int,
    linears: dict[str, str | tuple[str, ...]],
    norms: dict[str, str] | None = None,
) -> list[KeyGroup]:
    """Key groups of blocks `{official}.{i}` <-> `{diffusers}.{i}`, i < count, from one block's tables."""
    groups: list[KeyGroup] = []
    for i in range(count):
        o, d = f"{official}.{i}", f"{diffusers}.{i}"
        for key, parts in linears.items():
            groups += _linear(
                f"{o}.{key}", [f"{d}.{p}" for p in ((parts,) if isinstance(parts, str) else parts)]
            )
        for key, part in (norms or {}).items():
            groups += _norm(f"{o}.{key}", f"{d}.{part}")
    return groups


def transformer_key_groups(cfg: DiTConfig) -> list[KeyGroup]:
    """Every parameter of a HunyuanDiT with `cfg`, in official and diffusers naming."""
    groups: list[KeyGroup] = []
    groups += _linear("img_in.proj", "x_embedder.proj")
    groups += _linear("time_in.mlp.0", "time_text_embed.timestep_embedder.linear_1")
    groups += _linear("time_in.mlp.2", "time_text_embed.timestep_embedder.linear_2")
    groups += _linear("vector_in.in_layer", "time_text_embed.text_embedder.linear_1")
    groups += _linear("vector_in.out_layer", "time_text_embed.text_embedder.linear_2")
    if cfg.guidance_embed:
        groups += _linear("guidance_in.mlp.0", "time_text_embed.guidance_embedder.linear_1")
        groups += _linear("guidance_in.mlp.2", "time_text_embed.guidance_embedder.linear_2")

    groups += _linear("txt_in.input_embedder", "context_embedder.proj_in")
    groups += _linear(
        "txt_in.t_embedder.mlp.0", "context_embedder.time_text_embed.timestep_embedder.linear_1"
    )
    groups += _linear(
        "txt_in.t_embedder.mlp.2", "context_embedder.time_text_embed.timestep_embedder.linear_2"
    )
    groups += _linear("txt_in.c_embedder.linear_1", "context_embedder.time_text_embed.text_embedder.linear_1")
    groups += _linear("txt_in.c_embedder.linear_2", "context_embedder.time_text_embed.text_embedder.linear_2")
    groups += _blocks(
        "txt_in.individual_token_refiner.blocks",
        "context_embedder.token_refiner.refiner_blocks",
        cfg.depth_refiner,
        _REFINER_LINEARS,
    )
    groups += _blocks("double_blocks", "transformer_blocks", cfg.depth_double, _DOUBLE_LINEARS, _DOUBLE_NORMS)
    groups += _blocks(
        "single_blocks", "single_transformer_blocks", cfg.depth_single, _SINGLE_LINEARS, _SINGLE_NORMS
    )
    groups += _linear("final_layer.linear", "proj_out")
    groups += [
        KeyGroup(f"final_layer.adaLN_modulation.1.{p}", (f"norm_out.linear.{p}",), swap_halves=True)
        for p in ("weight", "bias")
    ]
    return groups


def _swap(t: torch.Tensor) -> torch.Tensor:
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _split_sizes(group: KeyGroup, cfg: DiTConfig) -> list[int]:
    d = cfg.hidden_size
    return [d, d, d, cfg.mlp_hidden][: len(group.diffusers)]


def diffusers_to_official(state: dict[str, torch.Tensor], cfg: DiTConfig) -> dict[str, torch.Tensor]:
    """Convert a diffusers `HunyuanVideoTransformer3DModel` state dict to official key names."""
    groups = transformer_key_groups(cfg)
    expected = {k for g in groups for k in g.diffusers}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise KeyError(
            f"diffusers transformer weights do not match the config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    out: dict[str, torch.Tensor] = {}
    for g in groups:
        tensor = (
            torch.cat([state[k] for k in g.diffusers], dim=0)
            if len(g.diffusers) > 1
            else state[g.diffusers[0]]
        )
        out[g.official] = _swap(tensor) if g.swap_halves else tensor
    return out


def official_to_diffusers(state: dict[str, torch.Tensor], cfg: DiTConfig) -> dict[str, torch.Tensor]:
    """Convert official-layout weights to diffusers' key names (inverse of `diffusers_to_official`)."""
    out: dict[str, torch.Tensor] = {}
    for g in transformer_key_groups(cfg):
        if g.official not in state:
            raise KeyError(f"official transformer weights lack {g.official!r}")
        tensor = _swap(state[g.official]) if g.swap_halves else state[g.official]
        if len(g.diffusers) == 1:
            out[g.diffusers[0]] = tensor
        else:
            for key, part in zip(g.diffusers, tensor.split(_split_sizes(g, cfg), dim=0), strict=True):
                out[key] = part.contiguous()
    return out


def config_from_diffusers(data: dict[str, Any]) -> DiTConfig:
    """A DiTConfig from a diffusers transformer `config.json` dict."""
    heads, head_dim = int(data.get("num_attention_heads", 24)), int(data.get("attention_head_dim", 128))
    patch, patch_t = int(data.get("patch_size", 2)), int(data.get("patch_size_t", 1))
    if data.get("qk_norm", "rms_norm") != "rms_norm":
        raise ValueError(f"diffusers config qk_norm {data.get('qk_norm')!r} is not supported (only rms_norm)")
    return DiTConfig(
        in_channels=int(data.get("in_channels", 16)),
        out_channels=int(data.get("out_channels") or data.get("in_channels", 16)),
        hidden_size=heads * head_dim,
        num_heads=heads,
        depth_double=int(data.get("num_layers", 20)),
        depth_single=int(data.get("num_single_layers", 40)),
        depth_refiner=int(data.get("num_refiner_layers", 2)),
        mlp_ratio=float(data.get("mlp_ratio", 4.0)),
        patch_size=(patch_t, patch, patch),
        text_states_dim=int(data.get("text_embed_dim", 4096)),
        text_pooled_dim=int(data.get("pooled_projection_dim", 768)),
        rope_dims=tuple(data.get("rope_axes_dim", (16, 56, 56))),
        rope_theta=float(data.get("rope_theta", 256.0)),
        guidance_embed=bool(data.get("guidance_embeds", True)),
        image_condition=data.get("image_condition_type"),
    )


def vae_config_from_diffusers(data: dict[str, Any]) -> VAEConfig:
    """A VAEConfig from a diffusers AutoencoderKLHunyuanVideo `config.json` dict."""
    return VAEConfig(
        in_channels=int(data.get("in_channels", 3)),
        out_channels=int(data.get("out_channels", 3)),
        latent_channels=int(data.get("latent_channels", 16)),
        block_out_channels=tuple(data.get("block_out_channels", (128, 256, 512, 512))),
        layers_per_block=int(data.get("layers_per_block", 2)),
        norm_groups=int(data.get("norm_num_groups", 32)),
        scaling_factor=float(data.get("scaling_factor", 0.476986)),
        spatial_ratio=int(data.get("spatial_compression_ratio", 8)),
        temporal_ratio=int(data.get("temporal_compression_ratio", 4)),
        mid_attention=bool(data.get("mid_block_add_attention", True)),
    )


def vae_config_to_diffusers(cfg: VAEConfig) -> dict[str, Any]:
    """Constructor kwargs of diffusers' AutoencoderKLHunyuanVideo for `cfg`.

    Raises ValueError for a VAE diffusers cannot reproduce: per-frame GroupNorm statistics
    (`norm_stats="frame"`) exist only here, diffusers normalises over the whole clip.
    """
    if cfg.norm_stats != "clip":
        raise ValueError(
            f"VAE norm_stats={cfg.norm_stats!r} has no diffusers equivalent (diffusers' GroupNorm uses "
            "statistics over the whole clip, norm_stats='clip')"
        )
    blocks = len(cfg.block_out_channels)
    return {
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "latent_channels": cfg.latent_channels,
        "down_block_types": ["HunyuanVideoDownBlock3D"] * blocks,
        "up_block_types": ["HunyuanVideoUpBlock3D"] * blocks,
        "block_out_channels": list(cfg.block_out_channels),
        "layers_per_block": cfg.layers_per_block,
        "act_fn": "silu",
        "norm_num_groups": cfg.norm_groups,
        "scaling_factor": cfg.scaling_factor,
        "spatial_compression_ratio": cfg.spatial_ratio,
        "temporal_compression_ratio": cfg.temporal_ratio,
        "mid_block_add_attention": cfg.mid_attention,
    }


def config_to_diffusers(cfg: DiTConfig) -> dict[str, Any]:
    """Constructor kwargs of diffusers' HunyuanVideoTransformer3DModel for `cfg` (tests, export)."""
    if cfg.patch_size[1] != cfg.patch_size[2]:
        raise ValueError("diffusers needs a square spatial patch")
    return {
        "in_channels": cfg.in_channels,
        "out_channels": cfg.out_channels,
        "num_attention_heads": cfg.num_heads,
        "attention_head_dim": cfg.head_dim,
        "num_layers": cfg.depth_double,
        "num_single_layers": cfg.depth_single,
        "num_refiner_layers": cfg.depth_refiner,
        "mlp_ratio": cfg.mlp_ratio,
        "patch_size": cfg.patch_size[1],
        "patch_size_t": cfg.patch_size[0],
        "qk_norm": "rms_norm",
        "guidance_embeds": cfg.guidance_embed,
        "text_embed_dim": cfg.text_states_dim,
        "pooled_projection_dim": cfg.text_pooled_dim,
        "rope_theta": cfg.rope_theta,
        "rope_axes_dim": tuple(cfg.rope_dims),
        "image_condition_type": cfg.image_condition,
    }


# Our block list name -> diffusers' block list name.
BLOCK_LISTS = {"double_blocks": "transformer_blocks", "single_blocks": "single_transformer_blocks"}


def block_linears(block_list: str) -> dict[str, tuple[str, ...]]:
    """Per repeated DiT block of `block_list` (``double_blocks`` | ``single_blocks``): each official
    linear's sub-key -> the diffusers linears it is split into, in output order (LoRA file layout)."""
    table = {"double_blocks": _DOUBLE_LINEARS, "single_blocks": _SINGLE_LINEARS}[block_list]
    return {key: (parts,) if isinstance(parts, str) else tuple(parts) for key, parts in table.items()}

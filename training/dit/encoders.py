"""The frozen models of DiT training: the VAE latents come from and the text encoder prompts go through.

Both are fixed by the training config (or a trained VAE checkpoint), and the same two are written
into every checkpoint's pipeline bundle (`model.bundle`), so serving decodes with the VAE and
encodes with the text encoder the DiT was trained on.
"""

from __future__ import annotations

from pathlib import Path

import torch

from model.checkpoints import load_vae
from model.dit_config import DiTConfig
from model.text import TextEncoder, TextEncoderConfig, build_text_encoder
from model.vae import CausalVAE3D, VAEConfig
from training.dit.config import DiTTrainConfig


def text_encoder_config(config: DiTTrainConfig) -> TextEncoderConfig:
    """The exact text encoder (kind and token budget) the stage's prompts are encoded with."""
    length = config.text_max_length
    if config.text_encoder != "official":
        return TextEncoderConfig.preset(config.text_encoder, max_length=length)
    if not (config.text_llm_path and config.text_clip_path):
        raise ValueError("text_encoder 'official' needs text_llm_path and text_clip_path (local directories)")
    paths = {"llm_path": config.text_llm_path, "pooled_path": config.text_clip_path}
    return TextEncoderConfig.preset("official", max_length=length, **paths)


def make_text_encoder(config: DiTTrainConfig) -> TextEncoder:
    """The stage's text encoder (see `text_encoder_config`)."""
    return build_text_encoder(text_encoder_config(config))


def check_text_dims(config: DiTTrainConfig, text_encoder: TextEncoder) -> None:
    """The encoder's widths must be the DiT's text_states_dim / text_pooled_dim."""
    dit = DiTConfig.preset(config.dit_preset, **config.dit_overrides)
    got, want = (text_encoder.states_dim, text_encoder.pooled_dim), (dit.text_states_dim, dit.text_pooled_dim)
    if got != want:
        raise ValueError(
            f"text encoder {config.text_encoder!r} gives widths {got} but DiT preset {config.dit_preset!r} "
            f"expects {want}; pick a matching text_encoder / dit_preset pair"
        )


def make_vae(config: DiTTrainConfig, vae_path: str | Path | None) -> CausalVAE3D:
    """The trained VAE at `vae_path`, or (tests, no VAE yet) the config's preset with seed-0 weights."""
    if vae_path is not None:
        return load_vae(vae_path).eval()
    generator_state = torch.get_rng_state()
    torch.manual_seed(0)
    vae = CausalVAE3D(VAEConfig.preset(config.vae_preset, **config.vae_overrides)).eval()
    torch.set_rng_state(generator_state)
    return vae

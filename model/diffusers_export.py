"""Our DiT and VAE in diffusers' layout, for `save_pipeline(..., layout="diffusers")`.

    transformer/  config.json (_class_name HunyuanVideoTransformer3DModel) +
                  diffusion_pytorch_model.safetensors (diffusers key names; shards + index when large)
    vae/          config.json (_class_name AutoencoderKLHunyuanVideo) + weights (same keys as ours)
    scheduler/    scheduler_config.json (FlowMatchEulerDiscreteScheduler with the model's flow shift)

`HunyuanVideoTransformer3DModel.from_pretrained` and `AutoencoderKLHunyuanVideo.from_pretrained`
load these folders; our loaders (`model.checkpoints`) read them back too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from model.checkpoints import CONFIG_FILE, DEFAULT_SHARD_BYTES, DIFFUSERS_WEIGHTS_STEM, write_safetensors
from model.dit import HunyuanDiT
from model.keymaps import config_to_diffusers, official_to_diffusers, vae_config_to_diffusers
from model.vae import CausalVAE3D

# The diffusers release the configs below were checked against; its loaders only warn on newer ones.
DIFFUSERS_VERSION = "0.42.1"
TRANSFORMER_CLASS = "HunyuanVideoTransformer3DModel"
VAE_CLASS = "AutoencoderKLHunyuanVideo"


def _write(
    out: Path, class_name: str, config: dict[str, Any], state: dict[str, torch.Tensor], shard: int
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_safetensors(state, out, DIFFUSERS_WEIGHTS_STEM, shard, metadata={"format": "pt"})
    data = {"_class_name": class_name, "_diffusers_version": DIFFUSERS_VERSION, **config}
    (out / CONFIG_FILE).write_text(json.dumps(data, indent=2))
    return out


def save_diffusers_transformer(
    model: HunyuanDiT, directory: Path, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> Path:
    """`model` as a diffusers HunyuanVideoTransformer3DModel folder (ValueError if it cannot be one)."""
    config = config_to_diffusers(model.config)
    config["rope_axes_dim"] = list(config["rope_axes_dim"])
    state = official_to_diffusers(model.state_dict(), model.config)
    return _write(directory, TRANSFORMER_CLASS, config, state, max_shard_bytes)


def save_diffusers_vae(
    model: CausalVAE3D, directory: Path, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> Path:
    """`model` as a diffusers AutoencoderKLHunyuanVideo folder (ValueError if it cannot be one)."""
    return _write(
        directory, VAE_CLASS, vae_config_to_diffusers(model.config), model.state_dict(), max_shard_bytes
    )


def save_scheduler_config(directory: Path, shift: float) -> Path:
    """The flow-matching Euler scheduler diffusers' HunyuanVideo pipeline samples with."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "scheduler_config.json"
    config = {
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "_diffusers_version": DIFFUSERS_VERSION,
        "num_train_timesteps": 1000,
        "shift": shift,
    }
    path.write_text(json.dumps(config, indent=2))
    return path

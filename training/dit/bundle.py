"""The pipeline bundle a DiT checkpoint is registered as: what `serving` loads from the registry.

Layout (the contract documented in `serving/__init__.py`; training cannot import serving, so the
format name is repeated here and a test in tests/training checks serving loads what this writes):

    <checkpoint>/transformer/   EMA weights, model.checkpoints format (written by the trainer)
    <checkpoint>/vae/           the VAE the latents were encoded with
    <checkpoint>/pipeline.json  text encoder, fps, sampling defaults, provenance
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from model.checkpoints import save_model
from model.text import TextEncoderConfig
from model.vae import CausalVAE3D
from training.dit.config import DiTTrainConfig

PIPELINE_FILE = "pipeline.json"
PIPELINE_FORMAT = "videofoundry-pipeline/1"
VAE_DIR = "vae"


def text_encoder_config(config: DiTTrainConfig) -> TextEncoderConfig:
    """The exact text encoder (kind and token budget) the stage's prompts were encoded with."""
    length = config.text_max_length
    if config.text_encoder != "official":
        return TextEncoderConfig.preset(config.text_encoder, max_length=length)
    if not (config.text_llm_path and config.text_clip_path):
        raise ValueError("text_encoder 'official' needs text_llm_path and text_clip_path (local directories)")
    paths = {"llm_path": config.text_llm_path, "pooled_path": config.text_clip_path}
    return TextEncoderConfig.preset("official", max_length=length, **paths)


def write_pipeline_bundle(
    directory: Path, vae: CausalVAE3D, config: DiTTrainConfig, info: dict[str, Any]
) -> None:
    """Add vae/ and pipeline.json beside an already written transformer/ in `directory`."""
    save_model(vae, directory / VAE_DIR)
    meta = {
        "format": PIPELINE_FORMAT,
        "text_encoder": {"config": dataclasses.asdict(text_encoder_config(config))},
        "fps": 24,
        "info": {k: info[k] for k in ("stage", "data_version", "parent_version") if k in info},
    }
    (directory / PIPELINE_FILE).write_text(json.dumps(meta, indent=2))

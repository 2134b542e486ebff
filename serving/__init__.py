"""VideoFoundry `serving`: the one T2V / I2V inference API (SPEC §6). Imports only `model`.

Use:

    from serving import generate, write_mp4
    video = generate("a red kite over the sea", model="tiny-random", height=64, width=64, frames=9,
                     steps=8, seed=0)
    write_mp4(video, "out.mp4")            # H.264 at video.fps, plus out.png (thumbnail)
    video.metadata["model_version"]        # e.g. "videofoundry-dit v3 (@champion)"

`generate(prompt, image=None, *, model, config, tracking_uri, registered_model, progress, **settings)
-> Video` (serving.api). The settings are the fields of `GenerationSettings` (serving.limits: height,
width, frames, steps, shift, guidance, cfg_scale, negative_prompt, seed, i2v_stability); `loras`
(`LoRASpec(file or models:/videofoundry-lora-…, scale)`, serving.lora) and `lora_mode` apply LoRAs; the prompt
and every setting are checked once, before a model loads (frames 4n+1, H/W multiples of 16,
per-profile ceilings).
`generate(..., rewrite="normal" | "master")` first rewrites the prompt into the training captions'
style with an LLM (`rewrite_prompt`, serving.prompt_rewrite: the offline SmolLM2, or an
OpenAI-compatible endpoint as `ServingConfig.rewrite` says).
`ServingConfig.preset("tiny" | "paper", **overrides)` (serving.config) holds device, dtype (bf16), CPU
offload between text encoding / DiT / VAE, the VAE tiling, request limits and default sizes.

Model references (serving.references): ``tiny-random`` (built in, seeded weights), a registry URI
``models:/videofoundry-dit@champion`` or ``models:/videofoundry-dit/<n>``, an MLflow artifact URI
(``runs:/<run_id>/pipeline``), a local bundle or diffusers pipeline directory; none → the champion.

Pipeline bundle (the unit that the registry versions; format in `model.bundle`)
--------------------------------------------------------------------------------
A directory:

    pipeline/
      pipeline.json     {"format": "videofoundry-pipeline/1",
                         "text_encoder": {"preset": "tiny-random" | "offline-default"}
                                       | {"config": {<model.text.TextEncoderConfig fields>}},
                         "fps": 24,
                         "defaults": {"steps": 50, "shift": 7.0, "guidance": 6.0},   (optional)
                         "info": {"run_id": ..., "step": ..., "data_version": ...}}  (optional)
      transformer/      model.checkpoints.save_model(dit, "pipeline/transformer")
                          -> model.safetensors (official key names) + config.json
      vae/              model.checkpoints.save_model(vae, "pipeline/vae")

The DiT's text widths must match the text encoder (tiny-random 32/16, offline-default 576/384,
official 4096/768). Without pipeline.json the text encoder is inferred from those widths.

Registering a trained checkpoint (each DiT training checkpoint is such a bundle, written by
training with `model.bundle.save_pipeline`; so can anyone):

    mlflow.log_artifacts("<bundle dir>", artifact_path="pipeline")            # inside the run
    client.create_model_version("videofoundry-dit", source=f"runs:/{run_id}/pipeline", run_id=run_id)
    # evaluation.promotion moves the "champion" alias; the demo follows it.

A version's `source` may also be any artifact URI or an absolute local path of such a directory.

`export_model(ref, out, layout="diffusers")` (serving.export; `videofoundry export-diffusers`) writes
any reference as a bundle whose transformer/ and vae/ are diffusers folders (`from_pretrained` loads
them), with a scheduler/ config; it stays a bundle serving reads.
"""

from model.bundle import BundleError, BundleSpec, save_pipeline
from serving.api import generate, load_pipeline
from serving.config import ServingConfig
from serving.export import ExportError, export_model
from serving.limits import GenerationSettings, InvalidRequestError, RequestLimits, validate_size
from serving.lora import LoRASpec, lora_specs, registered_loras
from serving.pipeline import Pipeline, build_tiny_random
from serving.prompt_rewrite import PromptRewriteError, RewriteConfig, rewrite_prompt
from serving.references import (
    CHAMPION_ALIAS,
    DEFAULT_REGISTERED_MODEL,
    TINY_RANDOM,
    ModelReferenceError,
    ModelSource,
    NoChampionError,
    resolve_reference,
)
from serving.registry import RegistryUnavailableError
from serving.video import Video, read_mp4, thumbnail_path, write_mp4

__all__ = [
    "CHAMPION_ALIAS",
    "DEFAULT_REGISTERED_MODEL",
    "TINY_RANDOM",
    "BundleError",
    "BundleSpec",
    "ExportError",
    "GenerationSettings",
    "InvalidRequestError",
    "LoRASpec",
    "ModelReferenceError",
    "ModelSource",
    "NoChampionError",
    "Pipeline",
    "PromptRewriteError",
    "RegistryUnavailableError",
    "RequestLimits",
    "RewriteConfig",
    "ServingConfig",
    "Video",
    "build_tiny_random",
    "export_model",
    "generate",
    "load_pipeline",
    "lora_specs",
    "read_mp4",
    "registered_loras",
    "resolve_reference",
    "rewrite_prompt",
    "save_pipeline",
    "thumbnail_path",
    "validate_size",
    "write_mp4",
]

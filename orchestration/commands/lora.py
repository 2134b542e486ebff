"""`videofoundry train-lora`: a LoRA on any model reference from a folder of captioned videos/images.

Loads the base through serving's references (tiny-random, models:/…, a bundle, a diffusers
folder), trains with `training.dit.lora_trainer` (latents and text encodings cached under the
workspace's latents/lora/), writes the diffusers-layout file and registers it in MLflow as
``videofoundry-lora-<name>`` (training.dit.lora_registry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import HomeOption, LockWaitOption, ProfileOption, UserError, app, platform_config


@app.command("train-lora")
def train_lora(
    model: Annotated[
        str,
        typer.Option("--model", help="Base model: tiny-random | models:/… | a bundle | a diffusers folder."),
    ],
    data: Annotated[
        Path, typer.Option("--data", help="Folder of videos/images, each with a same-name .txt caption.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The LoRA file to write (.safetensors, diffusers layout).")
    ],
    rank: int = typer.Option(16, "--rank", help="LoRA rank r."),
    steps: int = typer.Option(100, "--steps", help="Optimizer steps."),
    alpha: float | None = typer.Option(None, "--alpha", help="LoRA alpha (update scale alpha/r; default r)."),
    dropout: float = typer.Option(0.0, "--dropout", help="Dropout on the adapter input."),
    targets: str = typer.Option("attn,mlp", "--targets", help="Comma list of attn, mlp, modulation."),
    lr: float = typer.Option(1e-4, "--lr", help="AdamW learning rate."),
    resolution: int = typer.Option(
        0, "--resolution", help="Bucket area side in pixels (0: 32 tiny, 544 otherwise)."
    ),
    frames: str = typer.Option(
        "", "--frames", help="Video frame buckets, 4n+1, comma list (default: 5 tiny, 33 otherwise)."
    ),
    i2v: bool = typer.Option(
        False, "--i2v", help="Image-to-video LoRA: first latent frame clean, loss on the rest."
    ),
    gradient_checkpointing: bool = typer.Option(
        False, "--gradient-checkpointing", help="Recompute blocks in backward."
    ),
    fp8: bool = typer.Option(False, "--fp8", help="Frozen block weights in FP8 e4m3 with scales."),
    block_swap: int = typer.Option(0, "--block-swap", help="Keep N blocks' weights in CPU memory (-1: all)."),
    offload_activations: bool = typer.Option(
        False, "--offload-activations", help="With --block-swap: saved block inputs in CPU memory."
    ),
    ffn_chunk_tokens: int | None = typer.Option(
        None, "--ffn-chunk-tokens", min=1, help="Run DiT blocks over token slices (low memory)."
    ),
    name: str | None = typer.Option(None, "--name", help="Registry name (default: the --out file's stem)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    seed: int = typer.Option(0, "--seed"),
    home: HomeOption = None,
    profile: ProfileOption = None,
    wait: LockWaitOption = 0.0,
) -> None:
    """Train a LoRA adapter of the DiT on DIR's captioned clips and write it as FILE.safetensors."""
    from model.lora import LoRAError, LoRASettings
    from model.lora_format import save_lora
    from orchestration.workspace_lock import workspace_lock
    from serving import BundleError, ModelReferenceError, Pipeline, ServingConfig, resolve_reference
    from training.dit.lora_data import LoRADataError, read_lora_folder
    from training.dit.lora_registry import LoRARecord, config_json, register_lora
    from training.dit.lora_trainer import LoRATrainConfig, LoRATrainer, LoRATrainError
    from training.tracking import TrackingSettings

    if out.suffix != ".safetensors":
        raise UserError(f"--out {out}: a LoRA file must end in .safetensors")
    platform = platform_config(home, profile, None)
    workspace = platform.workspace
    # It writes the workspace's latent and serving caches and its MLflow registry.
    with workspace_lock(workspace, "videofoundry train-lora", wait):
        try:
            settings = LoRASettings(
                rank=rank,
                alpha=alpha,
                dropout=dropout,
                targets=tuple(t.strip() for t in targets.split(",") if t.strip()),
            )
            dataset = read_lora_folder(data, videos_only=i2v)
            # cpu_offload: the parts arrive on the CPU; each goes to the device for its phase below (the
            # DiT after FP8 quantisation / with its swapped blocks left in CPU memory).
            serving = ServingConfig(device=device, cache_dir=str(workspace.serving_cache), cpu_offload=True)
            if serving.torch_device.type == "cuda":
                serving = serving.replace(dtype="bfloat16")
            source = resolve_reference(model, tracking_uri=platform.tracking_uri, cache_dir=serving.cache_dir)
            pipeline = Pipeline.load(source, serving)
            pipeline.vae.float().to(pipeline.device)  # the latent cache encodes float32 pixels
            text_on_device = any(
                True for _ in pipeline.text_encoder.parameters()
            )  # tiny-random's stays on the CPU
            if text_on_device:
                pipeline.text_encoder.to(pipeline.device)
            tiny = pipeline.transformer.config.hidden_size <= 512
            buckets = tuple(int(f) for f in frames.split(",") if f.strip()) or ((5,) if tiny else (33,))
            config = LoRATrainConfig(
                lora=settings, steps=steps, lr=lr, resolution=resolution or (32 if tiny else 544), frame_buckets=buckets,
                i2v=i2v, gradient_checkpointing=gradient_checkpointing, seed=seed, sample_posterior=not tiny,
                fp8_base=fp8, block_swap=block_swap, offload_activations=offload_activations,
                ffn_chunk_tokens=ffn_chunk_tokens,
            )  # fmt: skip
            trainer = LoRATrainer(pipeline.transformer, pipeline.vae, pipeline.text_encoder, config,
                                  workspace.latents / "lora", device=pipeline.device)  # fmt: skip
            sampler = trainer.prepare(dataset.records, dataset.images, dataset.videos)
            pipeline.vae.to("cpu")  # latents and text encodings are cached: free the device for the DiT
            if text_on_device:
                pipeline.text_encoder.to("cpu")
            result = trainer.train(sampler)
            values = {"lora": settings.to_dict(), **{k: v for k, v in config.__dict__.items() if k != "lora"}}
            metadata = {
                "base_model": source.version,
                "base_reference": model,
                "data_version": dataset.data_version,
                "task": "i2v" if i2v else "t2v",
                "train_config": config_json(values),
            }
            path = save_lora(pipeline.transformer, out, settings, metadata=metadata)
        except (
            LoRAError,
            LoRADataError,
            LoRATrainError,
            ModelReferenceError,
            BundleError,
            ValueError,
        ) as error:
            raise UserError(str(error)) from error
        summary = {
            "out": str(path),
            "base_model": source.version,
            "data_version": dataset.data_version,
            "clips": len(dataset.records),
            "samples": result.samples,
            "latents_encoded": result.encoded,
            "latents_reused": result.reused,
            "first_loss": round(result.losses[0], 5),
            "final_loss": round(sum(result.losses[-5:]) / len(result.losses[-5:]), 5),
        }
        record = LoRARecord(name or out.stem, path, source.version, model, dataset.data_version, config_json(values),
                            metadata["task"], rank, tuple(result.losses))  # fmt: skip
        tracking = TrackingSettings(uri=platform.tracking_uri, artifact_location=platform.artifact_uri)
        registered, version, run_id = register_lora(record, tracking)
        summary |= {
            "registered_model": registered,
            "version": version,
            "uri": f"models:/{registered}/{version}",
            "run_id": run_id,
        }
        typer.echo(json.dumps(summary))

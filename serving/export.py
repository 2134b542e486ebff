"""Write any model reference serving accepts as a diffusers HunyuanVideo folder (or our bundle)."""

from __future__ import annotations

from pathlib import Path

from model.bundle import save_pipeline
from model.checkpoints import DEFAULT_SHARD_BYTES
from serving.pipeline import load_parts
from serving.references import DEFAULT_REGISTERED_MODEL, resolve_reference


class ExportError(ValueError):
    """An export that cannot be written: the target exists or diffusers cannot represent the model."""


def export_model(
    model: str | None,
    out: str | Path,
    *,
    layout: str = "diffusers",
    tracking_uri: str | None = None,
    cache_dir: str | Path | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Write the model `model` names (see serving.references; None → the champion) to the new
    folder `out` as a bundle of `layout` (``diffusers``: transformer/ and vae/ that diffusers'
    `from_pretrained` loads, plus scheduler/ and our pipeline.json). The folder appears complete or
    not at all. Returns it."""
    target = Path(out)
    if target.exists():
        raise ExportError(f"{target}: already exists; export into a new folder")
    source = resolve_reference(
        model, tracking_uri=tracking_uri, cache_dir=cache_dir, registered_model=registered_model
    )
    transformer, vae, spec = load_parts(source)
    info = {**spec.info, "exported_from": source.reference, "model_version": source.version}
    try:
        return save_pipeline(
            target, transformer, vae, spec.text_encoder, fps=spec.fps, defaults=spec.defaults, info=info,
            layout=layout, max_shard_bytes=max_shard_bytes,
        )  # fmt: skip
    except ValueError as error:  # a config diffusers has no equivalent for (e.g. per-frame VAE norms)
        raise ExportError(f"{source.reference}: cannot export as {layout}: {error}") from error

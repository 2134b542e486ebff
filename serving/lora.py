"""LoRAs at inference: references, the registry's list, and applying them to a loaded DiT.

A LoRA reference is a `.safetensors` path (diffusers/PEFT layout, or official/musubi; see
`model.lora_format`) or a registry URI ``models:/videofoundry-lora-<name>/<version>`` /
``models:/videofoundry-lora-<name>@<alias>`` (a version made by `videofoundry train-lora`).

Modes: ``adapter`` keeps each LoRA as a separate adapter at its scale (switching LoRAs or scales
leaves the base weights untouched); ``merge`` folds them into the base weights (no per-step
overhead; the pipeline is then reloaded when the LoRA set changes). Scale 0 skips a LoRA in both
modes, so the output is exactly the base model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from torch import nn

from model.lora import LoRAError, merge_lora, remove_lora
from model.lora_format import load_lora
from serving.limits import InvalidRequestError
from serving.references import ModelReferenceError, resolve_reference

LORA_MODEL_PREFIX = "videofoundry-lora-"
LoRAMode = Literal["adapter", "merge"]
LORA_MODES = ("adapter", "merge")


@dataclass(frozen=True)
class LoRASpec:
    """One LoRA to apply: its reference and scale."""

    reference: str
    scale: float = 1.0


def lora_specs(references: list[str] | None, scales: list[float] | None) -> tuple[LoRASpec, ...]:
    """Pair `--lora` references with `--lora-scale` values (one scale for all, or one each; default 1)."""
    references, scales = references or [], scales or []
    if len(scales) not in (0, 1, len(references)):
        raise InvalidRequestError(
            f"{len(scales)} --lora-scale values for {len(references)} LoRAs; give one, or one per --lora"
        )
    if scales and not references:
        raise InvalidRequestError("--lora-scale without --lora")
    full = scales if len(scales) == len(references) else [scales[0] if scales else 1.0] * len(references)
    return tuple(LoRASpec(ref, float(s)) for ref, s in zip(references, full, strict=True))


def resolve_lora(reference: str, tracking_uri: str | None, cache_dir: str | Path | None) -> Path:
    """The local `.safetensors` file a LoRA reference names (downloaded once for registry URIs)."""
    if reference.startswith("models:/"):
        source = resolve_reference(reference, tracking_uri=tracking_uri, cache_dir=cache_dir)
        assert source.local_path is not None
        found = (
            sorted(source.local_path.rglob("*.safetensors"))
            if source.local_path.is_dir()
            else [source.local_path]
        )
        if len(found) != 1:
            raise ModelReferenceError(
                f"{reference}: expected one .safetensors LoRA in its artifacts, found {len(found)}"
            )
        return found[0]
    path = Path(reference.removeprefix("file://")).expanduser()
    if not path.is_file():
        raise InvalidRequestError(
            f"LoRA {reference}: no such file (pass a .safetensors path or models:/{LORA_MODEL_PREFIX}…)"
        )
    return path


def apply_loras(
    transformer: nn.Module, files: list[tuple[Path, float]], mode: LoRAMode
) -> list[dict[str, Any]]:
    """Replace the DiT's adapters by `files` at their scales (see module docstring); returns their info.

    Raises InvalidRequestError (one line, naming the file) for a LoRA that does not fit the model.
    """
    if mode not in LORA_MODES:
        raise InvalidRequestError(f"LoRA mode {mode!r} must be one of {LORA_MODES}")
    remove_lora(transformer)
    applied: list[dict[str, Any]] = []
    for i, (path, scale) in enumerate(files):
        try:
            info = load_lora(transformer, path, adapter=f"lora{i}", scale=scale)
        except LoRAError as err:
            remove_lora(transformer)
            raise InvalidRequestError(str(err)) from err
        applied.append({"file": str(path), "scale": scale, "layout": info.layout, "ranks": list(info.ranks)})
        if mode == "merge":
            merge_lora(transformer, f"lora{i}")
    return applied


def registered_loras(tracking_uri: str | None) -> list[dict[str, str]]:
    """The registry's LoRAs, newest version of each: name, version, uri, base_model, data_version, task."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        models = client.search_registered_models(filter_string=f"name LIKE '{LORA_MODEL_PREFIX}%'")
    except MlflowException as err:
        raise ModelReferenceError(f"cannot list LoRAs in the registry at {tracking_uri}: {err}") from err
    found: list[dict[str, str]] = []
    for model in sorted(models, key=lambda m: m.name):
        versions = client.search_model_versions(f"name='{model.name}'")
        if not versions:
            continue
        latest = max(versions, key=lambda v: int(v.version))
        tags = dict(latest.tags or {})
        found.append(
            {
                "name": model.name,
                "version": str(latest.version),
                "uri": f"models:/{model.name}/{latest.version}",
                "base_model": tags.get("base_model", ""),
                "data_version": tags.get("data_version", ""),
                "task": tags.get("task", ""),
            }
        )
    return found

"""The pipeline bundle: one directory holding everything `serving.generate` needs. The one module
of the format: training writes it (each DiT checkpoint is a bundle), serving reads it.

    <bundle>/
      pipeline.json        {"format": "videofoundry-pipeline/1",
                            "text_encoder": {"preset": "tiny-random" | "offline-default"}
                                          | {"config": {<model.text.TextEncoderConfig fields>}},
                            "fps": 24, "defaults": {...}, "info": {...}}
      transformer/         model.checkpoints.save_model(dit, ...)  (model.safetensors + config.json)
      vae/                 model.checkpoints.save_model(vae, ...)

It lives in `model` because both `training` and `serving` must reach it and neither may import the
other; a bundle is two `model.checkpoints` folders plus one JSON file (torch + safetensors only).
`save_pipeline` writes one (replacing the target atomically, or into a folder the caller
publishes); `read_spec` / `is_bundle` read one.

With `layout="diffusers"` transformer/ and vae/ are written as diffusers folders instead (plus
scheduler/), which diffusers' `from_pretrained` loads; no model_index.json is written, because our
text encoders (hashed words; SmolLM2 + MiniLM, a BERT) have no class in diffusers' HunyuanVideo
pipeline (Llama + CLIP-L). Such a folder is still a bundle.

A diffusers HunyuanVideo pipeline directory (model_index.json, transformer/, vae/, text_encoder/,
text_encoder_2/) is read as well; so is a bundle without pipeline.json, whose text encoder is then
chosen from the DiT's text widths (32/16 → tiny-random, 576/384 → offline-default).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.checkpoints import DEFAULT_SHARD_BYTES, save_model
from model.diffusers_export import save_diffusers_transformer, save_diffusers_vae, save_scheduler_config
from model.dit import HunyuanDiT
from model.text import TextEncoderConfig
from model.vae import CausalVAE3D

PIPELINE_FORMAT = "videofoundry-pipeline/1"
PIPELINE_FILE = "pipeline.json"
TRANSFORMER_DIR = "transformer"
VAE_DIR = "vae"
TEXT_ENCODER_PRESETS = ("tiny-random", "offline-default")
LAYOUTS = ("videofoundry", "diffusers")
# The flow shift recorded for a bundle whose defaults name none (the release's 720p value).
DEFAULT_FLOW_SHIFT = 7.0
# The (states, pooled) widths each text-encoder preset produces; used when a bundle names none.
_PRESET_BY_WIDTHS = {(32, 16): "tiny-random", (576, 384): "offline-default"}


class BundleError(ValueError):
    """A directory that is not a readable pipeline bundle; the message names the file and the problem."""


@dataclass(frozen=True)
class BundleSpec:
    """What pipeline.json says (or what was inferred when it is absent).

    Attributes:
        text_encoder: a preset name (`tiny-random`, `offline-default`) or a TextEncoderConfig.
        fps: playback rate of generated videos.
        defaults: default generation settings of this model (e.g. {"shift": 7.0, "guidance": 6.0}).
        info: free-form provenance written by training (run id, data version, step).
    """

    text_encoder: str | TextEncoderConfig = "tiny-random"
    fps: float = 24.0
    defaults: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def _text_encoder_json(spec: str | TextEncoderConfig) -> dict[str, Any]:
    if isinstance(spec, str):
        if spec not in TEXT_ENCODER_PRESETS:
            raise BundleError(
                f"text encoder preset {spec!r} is unknown; choose one of {TEXT_ENCODER_PRESETS}"
            )
        return {"preset": spec}
    return {"config": dataclasses.asdict(spec)}


def _text_encoder_from_json(data: Any, source: Path) -> str | TextEncoderConfig:
    if isinstance(data, str):
        data = {"preset": data}
    if not isinstance(data, dict):
        raise BundleError(f"{source}: 'text_encoder' must be an object with 'preset' or 'config'")
    if "preset" in data:
        if data["preset"] not in TEXT_ENCODER_PRESETS:
            raise BundleError(
                f"{source}: text encoder preset {data['preset']!r} is not one of {TEXT_ENCODER_PRESETS}"
            )
        return str(data["preset"])
    if "config" in data:
        try:
            return TextEncoderConfig(**data["config"])
        except TypeError as err:
            raise BundleError(f"{source}: bad text encoder config ({err})") from err
    raise BundleError(f"{source}: 'text_encoder' needs 'preset' or 'config'")


def _write_parts(
    out: Path, transformer: HunyuanDiT, vae: CausalVAE3D, spec: BundleSpec, layout: str, max_shard_bytes: int
) -> None:
    if layout == "diffusers":
        save_diffusers_transformer(transformer, out / TRANSFORMER_DIR, max_shard_bytes)
        save_diffusers_vae(vae, out / VAE_DIR, max_shard_bytes)
        save_scheduler_config(out / "scheduler", float(spec.defaults.get("shift", DEFAULT_FLOW_SHIFT)))
    else:
        save_model(transformer, out / TRANSFORMER_DIR, max_shard_bytes)
        save_model(vae, out / VAE_DIR, max_shard_bytes)
    payload = {
        "format": PIPELINE_FORMAT,
        "text_encoder": _text_encoder_json(spec.text_encoder),
        "fps": spec.fps,
        "defaults": spec.defaults,
        "info": spec.info,
    }
    (out / PIPELINE_FILE).write_text(json.dumps(payload, indent=2, default=str))


def save_pipeline(
    directory: str | Path,
    transformer: HunyuanDiT,
    vae: CausalVAE3D,
    text_encoder: str | TextEncoderConfig = "tiny-random",
    *,
    fps: float = 24.0,
    defaults: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    replace: bool = True,
    layout: str = "videofoundry",
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Write a pipeline bundle to `directory`; returns it.

    `layout`: ``videofoundry`` (our checkpoint format) or ``diffusers`` (transformer/ and vae/ that
    diffusers' `from_pretrained` loads, plus scheduler/; see model.diffusers_export). Both are
    bundles serving reads. Weights above `max_shard_bytes` are written as shards with an index.

    `replace` (default): `directory` is replaced atomically, so readers see the old bundle or the
    new one. `replace=False`: the parts are written into `directory`, which may hold other files,
    and the caller publishes it (a DiT training checkpoint is published atomically as a whole).
    The DiT's text widths must match the text encoder's (checked here, not at serving time).
    """
    out = Path(directory)
    if layout not in LAYOUTS:
        raise BundleError(f"bundle layout {layout!r} is unknown; choose one of {LAYOUTS}")
    spec = BundleSpec(text_encoder, float(fps), dict(defaults or {}), dict(info or {}))
    _check_text_widths(transformer, spec.text_encoder, out)
    if not replace:
        out.mkdir(parents=True, exist_ok=True)
        _write_parts(out, transformer, vae, spec, layout, max_shard_bytes)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        _write_parts(staging, transformer, vae, spec, layout, max_shard_bytes)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def _widths(spec: str | TextEncoderConfig) -> tuple[int, int]:
    if isinstance(spec, TextEncoderConfig):
        return spec.states_dim, spec.pooled_dim
    return next(w for w, name in _PRESET_BY_WIDTHS.items() if name == spec)


def _check_text_widths(transformer: HunyuanDiT, spec: str | TextEncoderConfig, where: Path) -> None:
    want = (transformer.config.text_states_dim, transformer.config.text_pooled_dim)
    have = _widths(spec)
    if want != have:
        raise BundleError(
            f"{where}: the DiT reads text of widths (states, pooled) = {want} but the text encoder "
            f"{spec if isinstance(spec, str) else 'config'} gives {have}"
        )


def is_bundle(path: Path) -> bool:
    """A directory that looks like a bundle (ours or diffusers'): transformer/ and vae/ inside."""
    return path.is_dir() and (path / TRANSFORMER_DIR).is_dir() and (path / VAE_DIR).is_dir()


def read_spec(path: Path, dit_text_widths: tuple[int, int]) -> BundleSpec:
    """The bundle's spec: pipeline.json, else a diffusers model_index.json, else inferred from widths."""
    meta_file = path / PIPELINE_FILE
    if meta_file.exists():
        try:
            data = json.loads(meta_file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise BundleError(f"{meta_file}: cannot read ({err})") from err
        if data.get("format") != PIPELINE_FORMAT:
            raise BundleError(f"{meta_file}: format {data.get('format')!r} is not {PIPELINE_FORMAT!r}")
        return BundleSpec(
            text_encoder=_text_encoder_from_json(data.get("text_encoder", "tiny-random"), meta_file),
            fps=float(data.get("fps", 24.0)),
            defaults=dict(data.get("defaults", {})),
            info=dict(data.get("info", {})),
        )
    if (path / "model_index.json").exists() and (path / "text_encoder").is_dir():
        # A diffusers pipeline: llava-llama-3 in text_encoder/, CLIP-L in text_encoder_2/.
        clip = path / "text_encoder_2"
        official = TextEncoderConfig.preset(
            "official", llm_path=str(path / "text_encoder"), pooled_path=str(clip)
        )
        return BundleSpec(text_encoder=official)
    preset = _PRESET_BY_WIDTHS.get(dit_text_widths)
    if preset is None:
        raise BundleError(
            f"{path}: no {PIPELINE_FILE} names the text encoder and the DiT's text widths {dit_text_widths} "
            f"match no preset ({_PRESET_BY_WIDTHS}); write {PIPELINE_FILE} with a text_encoder config"
        )
    return BundleSpec(text_encoder=preset)

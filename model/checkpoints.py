"""Load and save DiT and VAE weights in three layouts.

Accepted by `load_transformer` / `load_vae`:
1. our format: a directory with `model.safetensors` (official key names) + `config.json`
   (`{"format": "videofoundry-model/1", "kind": "dit"|"vae", "config": {...}}`), written by `save_model`;
2. the official release: a `.pt`/`.pth` file whose top level holds `module` (or `ema` /
   `state_dict`) with official key names, or a `.safetensors` file with those keys; the config comes
   from the `config=` argument, a `config.json` beside the file, or is inferred from tensor shapes;
3. a diffusers directory (`config.json` with `_class_name` HunyuanVideoTransformer3DModel /
   AutoencoderKLHunyuanVideo + `diffusion_pytorch_model*.safetensors`, sharded or not), or a
   pipeline root holding `transformer/` or `vae/`.
Models are built on the meta device and the tensors assigned, so a 13B checkpoint is held once.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.keymaps import config_from_diffusers, diffusers_to_official
from model.vae import CausalVAE3D, VAEConfig

FORMAT = "videofoundry-model/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A checkpoint path that cannot be read as the requested model; the message says why."""


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2)
    os.replace(handle.name, path)


def save_model(model: HunyuanDiT | CausalVAE3D, directory: str | Path) -> Path:
    """Write `model` to `directory` in our format (safetensors + config.json); returns the directory."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    kind = "dit" if isinstance(model, HunyuanDiT) else "vae"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with tempfile.NamedTemporaryFile(dir=out, delete=False, suffix=".tmp") as handle:
        tmp = handle.name
    save_file(state, tmp, metadata={"format": FORMAT, "kind": kind})
    os.replace(tmp, out / WEIGHTS_FILE)
    _atomic_write_json(out / CONFIG_FILE, {"format": FORMAT, "kind": kind, "config": model.config.to_dict()})
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: cannot read JSON config ({err})") from err


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors or official .pt file (unwrapping `module` / `ema` / `state_dict`)."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if path.suffix not in (".pt", ".pth", ".bin", ".ckpt"):
        raise CheckpointError(f"{path}: unknown weight file type (want .safetensors, .pt or .pth)")
    # mmap: a 25 GB official file is paged in on demand instead of read into memory twice.
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) files cannot be memory-mapped
        data = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("module", "ema", "state_dict"):
        if isinstance(data, dict) and key in data and isinstance(data[key], dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a state dict (optionally under 'module') of tensors")
    return data


def _read_diffusers_weights(directory: Path) -> dict[str, torch.Tensor]:
    single = directory / "diffusion_pytorch_model.safetensors"
    if single.exists():
        return load_file(str(single))
    index = directory / "diffusion_pytorch_model.safetensors.index.json"
    if index.exists():
        shards = sorted(set(_read_json(index)["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(directory / shard)))
        return state
    raise CheckpointError(f"{directory}: diffusers directory without diffusion_pytorch_model*.safetensors")


def _build(model_cls: type[nn.Module], config: Any, state: dict[str, torch.Tensor], source: Path) -> Any:
    with torch.device("meta"):
        model = model_cls(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        raise CheckpointError(f"{source}: weights do not fit the config: {str(err)[:600]}") from err
    return model.eval()


def _finish(model: nn.Module, dtype: torch.dtype | None, device: torch.device | str | None) -> Any:
    return model.to(device=device or "cpu", dtype=dtype) if dtype is not None else model.to(device or "cpu")


def infer_dit_config(state: dict[str, torch.Tensor]) -> DiTConfig:
    """A DiTConfig from official-layout tensor shapes (heads from the QK-norm width, RoPE by rule)."""
    try:
        proj = state["img_in.proj.weight"]
        head_dim = state["double_blocks.0.img_attn_q_norm.weight"].shape[0]
    except KeyError as err:
        raise CheckpointError(f"official transformer weights lack {err}; pass config= explicitly") from err
    hidden = proj.shape[0]
    depth = {
        name: len({m.group(1) for k in state if (m := re.match(rf"{name}\.(\d+)\.", k))})
        for name in ("double_blocks", "single_blocks", "txt_in.individual_token_refiner.blocks")
    }
    rope_t = 16 if head_dim == 128 else 2 * (head_dim // 8 // 2)
    rope_hw = (head_dim - rope_t) // 2
    return DiTConfig(
        in_channels=proj.shape[1],
        out_channels=state["final_layer.linear.weight"].shape[0]
        // (proj.shape[2] * proj.shape[3] * proj.shape[4]),
        hidden_size=hidden,
        num_heads=hidden // head_dim,
        depth_double=depth["double_blocks"],
        depth_single=depth["single_blocks"],
        depth_refiner=depth["txt_in.individual_token_refiner.blocks"],
        mlp_ratio=state["single_blocks.0.linear2.weight"].shape[1] / hidden - 1
        if depth["single_blocks"]
        else 4.0,
        patch_size=tuple(proj.shape[2:]),  # type: ignore[arg-type]
        text_states_dim=state["txt_in.input_embedder.weight"].shape[1],
        text_pooled_dim=state["vector_in.in_layer.weight"].shape[1],
        rope_dims=(rope_t, rope_hw, rope_hw),
        guidance_embed="guidance_in.mlp.0.weight" in state,
    )


def _sidecar(path: Path, kind: str) -> dict[str, Any] | None:
    """The config dict beside an official weight file (ours or diffusers'), if there is one."""
    side = path.parent / CONFIG_FILE
    if not side.exists():
        return None
    data = _read_json(side)
    if data.get("format") == FORMAT:
        if data.get("kind") != kind:
            raise CheckpointError(f"{side}: describes a {data.get('kind')!r}, not a {kind!r}")
        return data["config"]
    return {"_diffusers": data}


def _locate(path: Path, subdir: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_dir() and not (path / CONFIG_FILE).exists() and (path / subdir / CONFIG_FILE).exists():
        return path / subdir
    return path


def _vae_config_from_diffusers(data: dict[str, Any]) -> VAEConfig:
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


def infer_vae_config(state: dict[str, torch.Tensor]) -> VAEConfig:
    """A VAEConfig from tensor shapes (GroupNorm groups cannot be seen in weights: 32 assumed)."""
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"encoder\.down_blocks\.(\d+)\.", k))})
    if not blocks:
        raise CheckpointError("VAE weights lack encoder.down_blocks.*; pass config= explicitly")
    channels = tuple(state[f"encoder.down_blocks.{i}.resnets.0.conv1.conv.weight"].shape[0] for i in blocks)
    layers = len(
        {m.group(1) for k in state if (m := re.match(r"encoder\.down_blocks\.0\.resnets\.(\d+)\.", k))}
    )
    return VAEConfig(
        latent_channels=state["post_quant_conv.weight"].shape[0],
        block_out_channels=channels,
        layers_per_block=layers,
        mid_attention="encoder.mid_block.attentions.0.to_q.weight" in state,
    )


ModelT = TypeVar("ModelT", HunyuanDiT, CausalVAE3D)
ConfigT = TypeVar("ConfigT", DiTConfig, VAEConfig)


class _Loader(Generic[ModelT, ConfigT]):
    """Reads one model kind in the three layouts; subclasses say what differs between kinds."""

    kind: str  # our format's "kind"
    label: str  # for messages
    subdir: str  # its folder in a diffusers pipeline root
    diffusers_class: str  # `_class_name` of its diffusers config.json
    model_cls: type[ModelT]
    config_cls: type[ConfigT]

    # A config from a diffusers config.json dict, and one inferred from tensor shapes.
    parse_diffusers_config: Callable[[dict[str, Any]], ConfigT]
    infer_config: Callable[[dict[str, torch.Tensor]], ConfigT]

    def from_diffusers(
        self, state: dict[str, torch.Tensor], config: ConfigT, source: Path
    ) -> dict[str, torch.Tensor]:
        """Diffusers-named tensors in official names (the same names unless overridden)."""
        return state

    def file_state(
        self, state: dict[str, torch.Tensor], config: ConfigT | None, source: Path
    ) -> tuple[dict[str, torch.Tensor], ConfigT | None]:
        """A single weight file's tensors in official names, and the config (None: not known yet)."""
        return state, config

    def load(
        self,
        path: str | Path,
        config: ConfigT | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> ModelT:
        """The model at `path` (our format, the official release layout or a diffusers directory or
        pipeline root), built with `config` if given, else the config stored or inferred there."""
        source = _locate(Path(path), self.subdir)
        if source.is_dir():
            meta = _read_json(source / CONFIG_FILE)
            if meta.get("format") == FORMAT:
                if meta.get("kind") != self.kind:
                    raise CheckpointError(f"{source}: holds a {meta.get('kind')!r}, not a {self.label}")
                config = config or self.config_cls.from_dict(meta["config"])
                state = load_file(str(source / WEIGHTS_FILE))
            elif meta.get("_class_name") == self.diffusers_class:
                config = config or self.parse_diffusers_config(meta)
                state = self.from_diffusers(_read_diffusers_weights(source), config, source)
            else:
                raise CheckpointError(
                    f"{source}: config.json is neither ours nor a diffusers {self.diffusers_class}"
                )
        else:
            state, config = self.file_state(_read_weights(source), config, source)
            if config is None and (side := _sidecar(source, self.kind)) is not None:
                config = (
                    self.parse_diffusers_config(side["_diffusers"])
                    if "_diffusers" in side
                    else self.config_cls.from_dict(side)
                )
        return _finish(
            _build(self.model_cls, config or self.infer_config(state), state, source), dtype, device
        )


class _DiTLoader(_Loader[HunyuanDiT, DiTConfig]):
    kind, label, subdir = "dit", "DiT", "transformer"
    diffusers_class = "HunyuanVideoTransformer3DModel"
    model_cls, config_cls = HunyuanDiT, DiTConfig

    parse_diffusers_config, infer_config = staticmethod(config_from_diffusers), staticmethod(infer_dit_config)

    def from_diffusers(
        self, state: dict[str, torch.Tensor], config: DiTConfig, source: Path
    ) -> dict[str, torch.Tensor]:
        try:
            return diffusers_to_official(state, config)
        except KeyError as err:
            raise CheckpointError(f"{source}: {err}") from err

    def file_state(
        self, state: dict[str, torch.Tensor], config: DiTConfig | None, source: Path
    ) -> tuple[dict[str, torch.Tensor], DiTConfig | None]:
        if "x_embedder.proj.weight" not in state:  # official names
            return state, config
        # A diffusers state dict saved as a single file: converting it needs its config.
        side = _sidecar(source, self.kind)
        config = config or (
            self.parse_diffusers_config(side["_diffusers"]) if side and "_diffusers" in side else None
        )
        if config is None:
            raise CheckpointError(
                f"{source}: diffusers-named weights need config= or a diffusers config.json beside"
            )
        return self.from_diffusers(state, config, source), config


class _VAELoader(_Loader[CausalVAE3D, VAEConfig]):
    kind, label, subdir = "vae", "VAE", "vae"
    diffusers_class = "AutoencoderKLHunyuanVideo"
    model_cls, config_cls = CausalVAE3D, VAEConfig  # the VAE's keys are the same in both layouts

    parse_diffusers_config, infer_config = (
        staticmethod(_vae_config_from_diffusers),
        staticmethod(infer_vae_config),
    )

    def file_state(
        self, state: dict[str, torch.Tensor], config: VAEConfig | None, source: Path
    ) -> tuple[dict[str, torch.Tensor], VAEConfig | None]:
        # The official VAE file may prefix every key with "vae." (it was saved from the pipeline).
        if all(k.startswith("vae.") for k in state):
            state = {k[len("vae.") :]: v for k, v in state.items()}
        return state, config


# Public: load_transformer(path, config=None, dtype=None, device=None) -> HunyuanDiT, and the same
# for the VAE (official .pt/.safetensors file, diffusers directory or our format).
load_transformer = _DiTLoader().load
load_vae = _VAELoader().load

"""Load and save DiT and VAE weights in three layouts.

Accepted by `load_transformer` / `load_vae`:
1. our format: a directory with `model.safetensors` (official key names; above 5 GiB, shards
   `model-0000i-of-0000N.safetensors` + `model.safetensors.index.json`) + `config.json`
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
from model.keymaps import config_from_diffusers, diffusers_to_official, vae_config_from_diffusers
from model.vae import CausalVAE3D, VAEConfig

FORMAT = "videofoundry-model/1"
WEIGHTS_STEM = "model"  # model.safetensors, or model-0000i-of-0000N.safetensors + an index
DIFFUSERS_WEIGHTS_STEM = "diffusion_pytorch_model"
DEFAULT_SHARD_BYTES = 5 * 2**30
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A checkpoint path that cannot be read as the requested model; the message says why."""


def _atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2)
    os.replace(handle.name, path)


def save_model(
    model: HunyuanDiT | CausalVAE3D, directory: str | Path, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> Path:
    """Write `model` to `directory` in our format (safetensors + config.json); returns the directory.

    Weights above `max_shard_bytes` are split into `model-0000i-of-0000N.safetensors` shards with a
    `model.safetensors.index.json` (the Hugging Face layout), so a 13B model is not one 26 GB file.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    kind = "dit" if isinstance(model, HunyuanDiT) else "vae"
    write_safetensors(
        model.state_dict(), out, WEIGHTS_STEM, max_shard_bytes, metadata={"format": FORMAT, "kind": kind}
    )
    _atomic_write_json(out / CONFIG_FILE, {"format": FORMAT, "kind": kind, "config": model.config.to_dict()})
    return out


def _shard_plan(state: dict[str, torch.Tensor], max_shard_bytes: int) -> list[list[str]]:
    """Keys grouped into shards of at most `max_shard_bytes` (a larger tensor gets a shard of its own),
    in state-dict order so a block's tensors stay together."""
    shards: list[list[str]] = [[]]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    return shards


def write_safetensors(
    state: dict[str, torch.Tensor],
    directory: Path,
    stem: str,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    metadata: dict[str, str] | None = None,
) -> list[Path]:
    """Write `state` as `<stem>.safetensors`, or as shards `<stem>-0000i-of-0000N.safetensors` plus
    `<stem>.safetensors.index.json` ({"metadata": {"total_size"}, "weight_map"}) when it exceeds
    `max_shard_bytes`. Each file is written to a temp name and renamed; files of an earlier save
    with the other layout are removed, so a reader never sees both. Returns the weight files."""
    if max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be positive, got {max_shard_bytes}")
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    plan = _shard_plan(state, max_shard_bytes)
    names = (
        [f"{stem}.safetensors"]
        if len(plan) == 1
        else [f"{stem}-{i + 1:05d}-of-{len(plan):05d}.safetensors" for i in range(len(plan))]
    )
    for name, keys in zip(names, plan, strict=True):
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as handle:
            tmp = handle.name
        save_file({k: state[k] for k in keys}, tmp, metadata=metadata)
        os.replace(tmp, directory / name)
    index = directory / f"{stem}.safetensors.index.json"
    stale = [p for p in directory.glob(f"{stem}*.safetensors") if p.name not in names]
    if len(plan) == 1:
        stale.append(index)
    else:
        total = sum(t.numel() * t.element_size() for t in state.values())
        weight_map = {k: name for name, keys in zip(names, plan, strict=True) for k in keys}
        _atomic_write_json(index, {"metadata": {"total_size": total}, "weight_map": weight_map})
    for path in stale:
        path.unlink(missing_ok=True)
    return [directory / name for name in names]


def read_safetensors(directory: Path, stem: str) -> dict[str, torch.Tensor]:
    """The tensors `write_safetensors(…, directory, stem)` wrote: one file or the shards of an index."""
    single = directory / f"{stem}.safetensors"
    if single.exists():
        return load_file(str(single))
    index = directory / f"{stem}.safetensors.index.json"
    if not index.exists():
        raise CheckpointError(f"{directory}: no {single.name} and no {index.name}")
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index}: no weight_map")
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        if not (directory / shard).exists():
            raise CheckpointError(f"{index}: names shard {shard}, which is missing")
        state.update(load_file(str(directory / shard)))
    if missing := set(weight_map) - set(state):
        raise CheckpointError(f"{index}: {len(missing)} tensors listed but absent, e.g. {sorted(missing)[0]}")
    return state


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
                state = read_safetensors(source, WEIGHTS_STEM)
            elif meta.get("_class_name") == self.diffusers_class:
                config = config or self.parse_diffusers_config(meta)
                state = self.from_diffusers(read_safetensors(source, DIFFUSERS_WEIGHTS_STEM), config, source)
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
        staticmethod(vae_config_from_diffusers),
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

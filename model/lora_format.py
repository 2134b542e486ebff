"""LoRA files: save in diffusers' HunyuanVideo layout, load that layout and the official/musubi one.

Written (`save_lora`): safetensors with, per adapted diffusers linear,
``transformer.<diffusers name>.lora_A.weight`` (r, in) and ``….lora_B.weight`` (out, r), e.g.
``transformer.transformer_blocks.0.attn.to_q.lora_A.weight`` or
``transformer.single_transformer_blocks.3.proj_mlp.lora_B.weight``: what diffusers'
`HunyuanVideoLoraLoaderMixin.load_lora_weights` / `load_lora_adapter(prefix="transformer")` read.
The alpha / r scale is folded into lora_B, so the file means scale 1 under every loader.
Metadata (strings): ``format``, ``architecture``, ``settings`` (LoRASettings JSON), ``dit``
(widths and depths) and whatever the caller adds (base model, data version, task).

Read (`load_lora`), detected per key:
- the diffusers/PEFT layout above (prefix ``transformer.`` or ``diffusion_model.`` or none), with
  optional ``<name>.alpha`` tensors;
- the same layout over official module names (``transformer.double_blocks.0.img_attn_qkv.lora_A.weight``);
- the official/musubi-tuner layout ``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight`` /
  ``.lora_up.weight`` / ``.alpha`` (update scale alpha / r), one adapter over each fused linear.
Anything else, or shapes that do not fit the model, raises `LoRAFileError` naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from model.dit import HunyuanDiT
from model.lora import (
    DEFAULT_ADAPTER,
    LoRAError,
    LoRASettings,
    LoRATarget,
    adapter_parts,
    add_lora_part,
    linear_features,
    linear_weight,
    lora_targets,
    set_lora_scale,
)

LORA_FORMAT = "videofoundry-lora/1"
ARCHITECTURE = "hunyuan-video-dit"
PREFIX = "transformer."
_PEFT = re.compile(r"^(?:transformer\.|diffusion_model\.)?(?P<name>.+)\.lora_(?P<ab>[AB])\.weight$")
_MUSUBI = re.compile(r"^lora_unet_(?P<name>.+)\.lora_(?P<ab>down|up)\.weight$")
_ALPHA = re.compile(r"^(?:transformer\.|diffusion_model\.|lora_unet_)?(?P<name>.+)\.alpha$")


class LoRAFileError(LoRAError):
    """A LoRA file that cannot be read or does not fit the model; the message starts with the file."""


@dataclass(frozen=True)
class LoRAFileInfo:
    """What `load_lora` attached: the adapter name, layout read, ranks seen and the file's metadata."""

    adapter: str
    layout: str
    ranks: tuple[int, ...]
    parts: int
    metadata: dict[str, str]


def dit_signature(model: nn.Module) -> dict[str, Any]:
    """Widths and depths a LoRA must match (stored in the file's metadata)."""
    cfg = cast(HunyuanDiT, model).config
    return {
        "hidden_size": cfg.hidden_size,
        "mlp_hidden": cfg.mlp_hidden,
        "depth_double": cfg.depth_double,
        "depth_single": cfg.depth_single,
    }


def lora_to_diffusers(model: nn.Module, adapter: str = DEFAULT_ADAPTER) -> dict[str, torch.Tensor]:
    """Adapter `adapter` as diffusers-layout tensors (scales folded into lora_B, float32)."""
    by_module: dict[str, list[LoRATarget]] = {}
    for target in lora_targets(model):
        by_module.setdefault(target.module, []).append(target)
    pieces: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for (module, _), part in adapter_parts(model, adapter).items():
        a = part.lora_A.detach().float().cpu()
        b = part.lora_B.detach().float().cpu() * part.scale
        for target in by_module[module]:
            lo, hi = (
                max(target.offset, part.offset),
                min(target.offset + target.size, part.offset + part.size),
            )
            if lo >= hi:
                continue
            if (lo, hi) != (target.offset, target.offset + target.size):
                raise LoRAError(f"{module}: a LoRA part covers only rows {lo}:{hi} of {target.diffusers}")
            pieces.setdefault(target.diffusers, []).append((a, b[lo - part.offset : hi - part.offset]))
    out: dict[str, torch.Tensor] = {}
    for name, items in sorted(pieces.items()):
        # Several parts on one diffusers linear (e.g. a fused import plus a slice): stack the ranks.
        out[f"{PREFIX}{name}.lora_A.weight"] = torch.cat([a for a, _ in items], dim=0).contiguous()
        out[f"{PREFIX}{name}.lora_B.weight"] = torch.cat([b for _, b in items], dim=1).contiguous()
    return out


def save_lora(
    model: nn.Module,
    path: str | Path,
    settings: LoRASettings,
    adapter: str = DEFAULT_ADAPTER,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write adapter `adapter` to `path` (.safetensors) in the diffusers layout (see module docstring)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise LoRAError(f"{path}: a LoRA file must end in .safetensors")
    meta = {
        "format": LORA_FORMAT,
        "architecture": ARCHITECTURE,
        "settings": json.dumps(settings.to_dict()),
        "dit": json.dumps(dit_signature(model)),
        **(metadata or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(lora_to_diffusers(model, adapter), str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_lora_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a LoRA safetensors file; LoRAFileError when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise LoRAFileError(f"{path}: LoRA file does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {k: handle.get_tensor(k) for k in handle.keys()}, dict(handle.metadata() or {})  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise LoRAFileError(f"{path}: not a readable safetensors LoRA ({err})") from err


@dataclass
class _Entry:
    module: str
    part: str
    offset: int
    size: int
    a: torch.Tensor | None = None
    b: torch.Tensor | None = None
    alpha: float | None = None


def _resolve(name: str, musubi: bool, slices: dict[str, LoRATarget], whole: dict[str, str]) -> _Entry | None:
    if not musubi and name in slices:
        t = slices[name]
        return _Entry(t.module, t.part, t.offset, t.size)
    module = whole.get(name.replace(".", "_") if not musubi else name)
    return None if module is None else _Entry(module, "", 0, -1)


def _parse(path: Path, tensors: dict[str, torch.Tensor], model: nn.Module) -> tuple[list[_Entry], str]:
    targets = lora_targets(model)
    slices = {t.diffusers: t for t in targets}
    whole = {t.module.replace(".", "_"): t.module for t in targets}
    entries: dict[str, _Entry] = {}
    alphas: dict[str, float] = {}
    layouts: set[str] = set()
    signature = dit_signature(model)
    for key, tensor in tensors.items():
        alpha = _ALPHA.match(key)
        if alpha:
            alphas[alpha["name"]] = float(tensor.float().reshape(-1)[0])
            continue
        musubi = _MUSUBI.match(key)
        match = musubi or _PEFT.match(key)
        entry = _resolve(match["name"], musubi is not None, slices, whole) if match else None
        if match is None or entry is None:
            raise LoRAFileError(
                f"{path}: LoRA for another architecture: key {key!r} names no linear of this DiT "
                f"({signature['depth_double']} double / {signature['depth_single']} single blocks)"
            )
        layouts.add("musubi" if musubi else "diffusers" if entry.part else "official")
        entry = entries.setdefault(match["name"], entry)
        if match["ab"] in ("A", "down"):
            entry.a = tensor
        else:
            entry.b = tensor
    for name, entry in entries.items():
        if entry.a is None or entry.b is None:
            raise LoRAFileError(f"{path}: {name} has only one of its two LoRA matrices")
        entry.alpha = alphas.get(name)
    if not entries:
        raise LoRAFileError(f"{path}: holds no LoRA tensors")
    return list(entries.values()), "+".join(sorted(layouts))


def load_lora(
    model: nn.Module,
    path: str | Path,
    adapter: str = DEFAULT_ADAPTER,
    scale: float = 1.0,
    expect_rank: int | None = None,
) -> LoRAFileInfo:
    """Attach the LoRA in `path` to `model` as adapter `adapter` at `scale` (see module docstring).

    Raises LoRAFileError (one line, naming the file) for a LoRA of another architecture (unknown
    module, other widths), a rank mismatch (lora_A vs lora_B, or vs `expect_rank`) or a bad file.
    """
    path = Path(path)
    tensors, metadata = read_lora_file(path)
    architecture = metadata.get("architecture", ARCHITECTURE)
    if architecture != ARCHITECTURE:
        raise LoRAFileError(f"{path}: LoRA for another architecture ({architecture!r}, not {ARCHITECTURE!r})")
    entries, layout = _parse(path, tensors, model)
    ranks: set[int] = set()
    for entry in entries:
        assert entry.a is not None and entry.b is not None
        linear = model.get_submodule(entry.module)
        in_features, out_features = linear_features(linear)
        size = out_features if entry.size < 0 else entry.size
        rank = int(entry.a.shape[0])
        name = entry.part or entry.module
        if entry.a.ndim != 2 or entry.b.ndim != 2 or entry.b.shape[1] != rank:
            raise LoRAFileError(
                f"{path}: rank mismatch at {name}: lora_A {tuple(entry.a.shape)} vs lora_B {tuple(entry.b.shape)}"
            )
        if expect_rank is not None and rank != expect_rank:
            raise LoRAFileError(f"{path}: rank mismatch at {name}: rank {rank}, expected {expect_rank}")
        if entry.a.shape[1] != in_features or entry.b.shape[0] != size:
            raise LoRAFileError(
                f"{path}: LoRA for another architecture: {name} is {entry.b.shape[0]}x{entry.a.shape[1]}, "
                f"this DiT's is {size}x{in_features}"
            )
        ranks.add(rank)
        part_scale = 1.0 if entry.alpha is None else entry.alpha / rank
        part = add_lora_part(model, entry.module, entry.part, entry.offset, size, rank, part_scale, adapter)
        dtype = linear_weight(linear).dtype
        with torch.no_grad():
            part.lora_A.copy_(entry.a)
            part.lora_B.copy_(entry.b)
        if dtype.is_floating_point and dtype.itemsize >= 2:
            part.to(dtype)
        part.requires_grad_(False)
    set_lora_scale(model, adapter, scale)
    return LoRAFileInfo(adapter, layout, tuple(sorted(ranks)), len(entries), metadata)

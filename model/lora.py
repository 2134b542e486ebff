"""LoRA adapters on the DiT's block linears, addressed per projection in diffusers' layout.

Why not PEFT's `inject_adapter_in_model`: PEFT adapts whole `nn.Linear` modules, while our
official layout fuses projections that diffusers (and so every HunyuanVideo LoRA file in the
PEFT layout) adapts separately: `img_attn_qkv` = to_q | to_k | to_v, single-block `linear1` =
to_q | to_k | to_v | proj_mlp. A PEFT LoRA on the fused linear shares one A across q/k/v, and a
diffusers file with separate A's for q/k/v only fits it as a rank-3r block-diagonal adapter. Here
an adapter is a set of *parts*, each a low-rank update of one output slice of a linear
(`LoRAPart`: rows [offset, offset + size)), so a diffusers key maps 1:1 onto one part, and an
official/musubi LoRA of the fused linear is one whole-output part. The update is added by a
forward hook, so parameter names of the base model are unchanged (checkpoints still load) and
any base linear (bf16, FP8 with scales) takes adapters.

Targets (`LoRASettings.targets`), per double/single block (refiner and final layer untouched):
- ``attn``: to_q/to_k/to_v/to_out.0 and the text stream's add_q/k/v_proj/to_add_out (double);
  to_q/to_k/to_v (slices of linear1) and proj_out (= linear2, the parallel output) (single);
- ``mlp``: ff / ff_context fc1 and fc2 (double), proj_mlp (slice of linear1) (single);
- ``modulation``: norm1.linear, norm1_context.linear (double), norm.linear (single).

Several named adapters may sit on one model, each with a scale (`set_lora_scale`); scale 0 skips
the adapter entirely, so the output is exactly the base model's. `merge_lora` folds adapters into
the base weights and removes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from model.keymaps import BLOCK_LISTS, block_linears

TARGET_GROUPS = ("attn", "mlp", "modulation")
DEFAULT_ADAPTER = "default"


class LoRAError(ValueError):
    """A LoRA that does not fit the model (unknown module, wrong shape) or malformed settings."""


@dataclass(frozen=True)
class LoRASettings:
    """rank r, alpha (update scale alpha / r; None = r), dropout on the adapter input, target groups."""

    rank: int = 16
    alpha: float | None = None
    dropout: float = 0.0
    targets: tuple[str, ...] = ("attn", "mlp")

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise LoRAError(f"LoRA rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise LoRAError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        unknown = sorted(set(self.targets) - set(TARGET_GROUPS))
        if unknown or not self.targets:
            raise LoRAError(f"LoRA targets {unknown or '()'} invalid; choose from {TARGET_GROUPS}")

    @property
    def scale(self) -> float:
        return (self.alpha if self.alpha is not None else self.rank) / self.rank

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoRASettings:
        values = dict(data)
        values["targets"] = tuple(values.get("targets", cls.targets))
        return cls(**values)


@dataclass(frozen=True)
class LoRATarget:
    """One adaptable output slice: `module` (our name) rows [offset, offset + size), `diffusers` name."""

    module: str
    part: str
    diffusers: str
    offset: int
    size: int
    group: str


def linear_features(linear: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of an nn.Linear or a quantised linear (model.fp8)."""
    return cast(int, linear.in_features), cast(int, linear.out_features)


def linear_weight(linear: nn.Module) -> torch.Tensor:
    return cast(torch.Tensor, linear.weight)


def _group(part: str) -> str:
    if "norm" in part:
        return "modulation"
    if part.startswith("ff") or part == "proj_mlp":
        return "mlp"
    return "attn"


def _linear(model: nn.Module, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise LoRAError(f"the model has no linear {name!r}") from err


def lora_targets(model: nn.Module) -> list[LoRATarget]:
    """Every adaptable slice of the DiT's double/single blocks, in diffusers' per-projection layout."""
    targets: list[LoRATarget] = []
    for ours, theirs in BLOCK_LISTS.items():
        blocks: Sequence[nn.Module] = getattr(model, ours)
        for i in range(len(blocks)):
            for key, parts in block_linears(ours).items():
                name = f"{ours}.{i}.{key}"
                linear = _linear(model, name)
                width, out = linear_features(linear)
                # Fused parts are hidden-size wide; the last one (proj_mlp) takes the rest.
                sizes = [width] * (len(parts) - 1) + [out - width * (len(parts) - 1)]
                offset = 0
                for part, size in zip(parts, sizes, strict=True):
                    targets.append(LoRATarget(name, part, f"{theirs}.{i}.{part}", offset, size, _group(part)))
                    offset += size
    return targets


class LoRAPart(nn.Module):
    """Low-rank update scale · B A of rows [offset, offset + size): lora_A (r, in), lora_B (size, r)."""

    def __init__(self, in_features: int, size: int, rank: int, offset: int, scale: float) -> None:
        super().__init__()
        self.offset, self.size, self.scale = offset, size, scale
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(size, rank))  # zero: a fresh adapter changes nothing
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def rank(self) -> int:
        return int(self.lora_A.shape[0])

    def delta_weight(self) -> torch.Tensor:
        """(size, in) float32 weight update."""
        return self.scale * (self.lora_B.float() @ self.lora_A.float())


class LoRAAdapters(nn.Module):
    """The adapters of one linear (`linear.lora`): adapter name -> parts; dropout and scale per adapter."""

    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.out_features = out_features
        self.adapters = nn.ModuleDict()
        self.scales: dict[str, float] = {}
        self.dropouts: dict[str, float] = {}

    def add(self, adapter: str, part: str, module: LoRAPart, dropout: float = 0.0) -> None:
        if adapter not in self.adapters:
            self.adapters[adapter] = nn.ModuleDict()
            self.scales[adapter], self.dropouts[adapter] = 1.0, dropout
        held = cast(nn.ModuleDict, self.adapters[adapter])
        held[part.replace(".", "/") or "whole"] = module  # '.' not allowed in module names

    def parts(self, adapter: str) -> dict[str, LoRAPart]:
        """part name ('' = the whole output) -> LoRAPart."""
        held: nn.ModuleDict = self.adapters[adapter]  # type: ignore[assignment]
        return {("" if k == "whole" else k.replace("/", ".")): m for k, m in held.items()}  # type: ignore[misc]

    def delta(
        self, x: torch.Tensor | Sequence[torch.Tensor], out: torch.Tensor, rows: slice | None = None
    ) -> torch.Tensor:
        """out + Σ_adapters scale · Σ_parts (their rows) part.scale · B A dropout(x).

        `x` may be a list of tensors standing for their concatenation along the last dim (A is
        applied per column block, so the concatenation is never built). `rows` (a contiguous slice
        of the output features): `out` holds only those features and only the parts' rows inside
        them are computed (model.seq_chunks.linear_rows).
        """
        start, stop, _ = (rows or slice(None)).indices(self.out_features)
        blocks = [x] if isinstance(x, torch.Tensor) else list(x)
        for adapter in self.adapters:
            scale = self.scales[adapter]
            if scale == 0.0:
                continue
            p = self.dropouts[adapter]
            inputs = [F.dropout(h, p, self.training) for h in blocks] if p > 0 else blocks
            pieces: list[tuple[int, torch.Tensor]] = []
            for part in self.parts(adapter).values():
                low, high = max(part.offset, start), min(part.offset + part.size, stop)
                if low >= high:
                    continue
                y = F.linear(_down(inputs, part.lora_A), part.lora_B[low - part.offset : high - part.offset])
                pieces.append((low - start, y * (part.scale * scale)))
            if pieces:
                out = out + self._assemble(pieces, out, stop - start).to(out.dtype)
        return out

    @staticmethod
    def _assemble(pieces: list[tuple[int, torch.Tensor]], out: torch.Tensor, width: int) -> torch.Tensor:
        """Slices at their offsets summed into (..., width)."""
        pieces.sort(key=lambda item: item[0])
        at = 0
        for offset, y in pieces:
            if offset != at:
                break
            at += y.shape[-1]
        if at == width:  # the usual case: parts tile the output (q | k | v)
            return torch.cat([y for _, y in pieces], dim=-1)
        dense = pieces[0][1].new_zeros(*out.shape[:-1], width)
        for offset, y in pieces:  # gaps or overlaps (a whole-output part beside slices)
            dense[..., offset : offset + y.shape[-1]] += y
        return dense


def _down(blocks: list[torch.Tensor], lora_a: torch.Tensor) -> torch.Tensor:
    """A · [blocks concatenated along the last dim], one column block of A per input block.

    Under autocast the input goes in as it is (autocast casts the float32 master A instead of
    making a float32 copy of the whole activation); otherwise it is cast to A's dtype."""
    cast = not torch.is_autocast_enabled(blocks[0].device.type) if blocks else True
    out: torch.Tensor | None = None
    at = 0
    for h in blocks:
        y = F.linear(h.to(lora_a.dtype) if cast else h, lora_a[:, at : at + h.shape[-1]])
        out = y if out is None else out + y
        at += h.shape[-1]
    if out is None or at != lora_a.shape[1]:
        raise LoRAError(f"LoRA input of width {at} does not match lora_A's {lora_a.shape[1]} columns")
    return out


def _lora_hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
    adapters = getattr(module, "lora", None)
    return out if adapters is None else adapters.delta(args[0], out)


def _adapters_of(linear: nn.Module, create: bool) -> LoRAAdapters | None:
    adapters = getattr(linear, "lora", None)
    if adapters is None and create:
        adapters = LoRAAdapters(linear_features(linear)[1])
        linear.add_module("lora", adapters)
        linear.register_forward_hook(_lora_hook)
    return adapters


def add_lora_part(
    model: nn.Module,
    module: str,
    part: str,
    offset: int,
    size: int,
    rank: int,
    scale: float,
    adapter: str = DEFAULT_ADAPTER,
    dropout: float = 0.0,
) -> LoRAPart:
    """Attach one (zero-initialised B) part to linear `module`; returns it to fill or train."""
    linear = _linear(model, module)
    lora = LoRAPart(linear_features(linear)[0], size, rank, offset, scale).to(linear_weight(linear).device)
    adapters = _adapters_of(linear, create=True)
    assert adapters is not None
    adapters.add(adapter, part, lora, dropout)
    return lora


def inject_lora(
    model: nn.Module, settings: LoRASettings, adapter: str = DEFAULT_ADAPTER
) -> list[nn.Parameter]:
    """Freeze the model and add trainable adapter `adapter` on the targeted slices; returns its params."""
    model.requires_grad_(False)
    params: list[nn.Parameter] = []
    for target in lora_targets(model):
        if target.group in settings.targets:
            part = add_lora_part(
                model, target.module, target.part, target.offset, target.size, settings.rank,
                settings.scale, adapter, settings.dropout,
            )  # fmt: skip
            params += [part.lora_A, part.lora_B]
    return params


def adapted_linears(model: nn.Module) -> Iterator[tuple[str, LoRAAdapters]]:
    """(linear name, its LoRAAdapters) for every linear that holds adapters."""
    for name, module in model.named_modules():
        adapters = getattr(module, "lora", None)
        if isinstance(adapters, LoRAAdapters):
            yield name, adapters


def adapter_names(model: nn.Module) -> list[str]:
    return sorted({a for _, held in adapted_linears(model) for a in held.adapters})


def adapter_parts(model: nn.Module, adapter: str = DEFAULT_ADAPTER) -> dict[tuple[str, str], LoRAPart]:
    """(linear name, part name) -> LoRAPart of `adapter`."""
    found = {
        (name, part): module
        for name, held in adapted_linears(model)
        if adapter in held.adapters
        for part, module in held.parts(adapter).items()
    }
    if not found:
        raise LoRAError(f"the model has no LoRA adapter {adapter!r} (has {adapter_names(model)})")
    return found


def set_lora_scale(model: nn.Module, adapter: str, scale: float) -> None:
    """Multiply adapter `adapter`'s update by `scale` (0 = exactly the base model)."""
    adapter_parts(model, adapter)
    for _, held in adapted_linears(model):
        if adapter in held.scales:
            held.scales[adapter] = float(scale)


def remove_lora(model: nn.Module, adapter: str | None = None) -> None:
    """Drop adapter `adapter` (None: all); a linear left without adapters loses its hook too."""
    for name, held in list(adapted_linears(model)):
        for key in [k for k in held.adapters if adapter is None or k == adapter]:
            del held.adapters[key]
            held.scales.pop(key)
            held.dropouts.pop(key)
        if not held.adapters:
            linear = model.get_submodule(name)
            del linear.lora
            for hook_id, fn in list(linear._forward_hooks.items()):
                if fn is _lora_hook:
                    del linear._forward_hooks[hook_id]


@torch.no_grad()
def merge_lora(model: nn.Module, adapter: str | None = None) -> None:
    """Fold adapter `adapter` (None: all) at its scale into the base weights, then remove it."""
    for name, held in adapted_linears(model):
        weight = linear_weight(model.get_submodule(name))
        if not weight.is_floating_point() or weight.element_size() < 2:
            raise LoRAError(f"{name}: cannot merge a LoRA into {weight.dtype} weights; use adapter mode")
        for key in [k for k in held.adapters if adapter is None or k == adapter]:
            scale = held.scales[key]
            if scale == 0.0:
                continue
            for part in held.parts(key).values():
                rows = weight[part.offset : part.offset + part.size]
                rows.copy_((rows.float() + scale * part.delta_weight().to(rows.device)).to(weight.dtype))
    remove_lora(model, adapter)

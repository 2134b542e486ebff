"""Named presets for config classes: `Config.preset(name, **overrides)` over a `Config.PRESETS` table.

One mechanism serves every component config of the repository, frozen dataclasses (model/,
serving/) and pydantic models (the other packages) alike. It lives in `model/` because the model
configs use it and `model` imports nothing of ours, while every other package may import `model`.
Pydantic is recognised by duck typing (`model_fields`, `model_dump`, `model_validate`), so `model/`
does not depend on it.

A table maps names to ready configs and is set right after its class:

    DiTConfig.PRESETS = {"tiny": DiTConfig(hidden_size=64, ...), "hunyuan-13b": DiTConfig()}

A preset that differs from another one says only the difference, through `replace`; a mapping
given for a field that holds a nested config (a section) updates only the keys it names:

    CurationConfig.PRESETS["paper"] = tiny.replace(scenes={"min_clip_s": 2.0, "max_clip_s": 20.0})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Self


class PresetError(ValueError):
    """An unknown preset name or config field; the message names the known ones."""


class PresetConfig:
    """Mixin of a config class: `preset(name, **overrides)` and `replace(**changes)`."""

    PRESETS: ClassVar[Mapping[str, Any]]
    """Preset name → config of this class (set after the class, in its module)."""

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> Self:
        """A fresh copy of the preset `name` with `overrides` applied as by `replace`.

        Raises `PresetError` naming the known presets when `name` is not one of them.
        """
        table = cls.__dict__.get("PRESETS")
        if table is None:
            raise TypeError(f"{cls.__name__} has no PRESETS table of its own")
        if name not in table:
            raise PresetError(f"unknown {cls.__name__} preset {name!r}; choose one of {', '.join(table)}")
        return table[name].replace(**overrides)

    def replace(self, **changes: Any) -> Self:
        """A copy with `changes`. A mapping given for a nested-config field updates only its keys.

        Pydantic configs are validated again, so a bad value fails here; unknown field names raise
        `PresetError` naming the fields.
        """
        return replace_fields(self, changes)


def replace_fields(config: Any, changes: Mapping[str, Any]) -> Any:
    """`config` (a dataclass or pydantic model) with `changes`, merging mappings into nested configs."""
    fields = _field_names(config)
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise PresetError(
            f"{type(config).__name__} has no field {unknown}; its fields are {', '.join(fields)}"
        )
    resolved = {
        key: replace_fields(getattr(config, key), value)
        if isinstance(value, Mapping) and _is_config(getattr(config, key))
        else value
        for key, value in changes.items()
    }
    if dataclasses.is_dataclass(config):
        return dataclasses.replace(config, **resolved)  # type: ignore[type-var]
    # Dump and validate (not model_copy): the copy is checked, and shares no section with the table.
    return type(config).model_validate({**config.model_dump(), **resolved})


def _is_config(value: Any) -> bool:
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)) or hasattr(
        type(value), "model_fields"
    )


def _field_names(config: Any) -> list[str]:
    if dataclasses.is_dataclass(config):
        return [field.name for field in dataclasses.fields(config)]
    if hasattr(type(config), "model_fields"):
        return list(type(config).model_fields)
    raise TypeError(f"{type(config).__name__} is neither a dataclass nor a pydantic model")

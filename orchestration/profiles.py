"""The platform profile → every component's preset: one table, one lookup.

A profile is nothing but a choice of one named preset per component config (`Config.PRESETS`,
model.presets): `tiny` runs on a CPU in seconds to minutes on the demo corpus (the tests' lineage);
`demo` is `tiny` with the DiT's SFT stage trained longer, so the champion reproduces its SFT clips,
and with the 4x-space `demo` VAE trained 1300 steps under a cosine schedule (the 8x `tiny` VAE's
held-out PSNR levels off near 13 dB, below its floor; `videofoundry demo`, a few minutes on 2
cores); `paper` is the report's recipe and sizes on a GPU cluster. `PROFILE_PRESETS` is that choice, and
`profile_config(Config, profile)` is the one way code turns a profile into a config; assets and
commands reach it through `WorkspaceResource.config_for` and `PlatformConfig.config_for`, which pass
their own profile. Nothing else compares profile strings.

Rows name classes by import path, so reading the table imports no component (the CLI starts
fast). A config nested in another (the DiT preset inside `DiTTrainConfig`, the camera-motion preset
inside `CaptionConfig` …) is named by the outer preset; its row here says the same name, and
tests/orchestration/test_profiles.py checks that they agree.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, NamedTuple, TypeVar, get_args

from model.presets import PresetConfig

Profile = Literal["tiny", "paper", "demo"]
PROFILES: tuple[str, ...] = get_args(Profile)

C = TypeVar("C", bound=PresetConfig)


class ProfileError(ValueError):
    """An unknown profile, or a config class without a row in `PROFILE_PRESETS`."""


class ProfilePresets(NamedTuple):
    """The preset a component uses in each profile."""

    tiny: str
    paper: str
    demo: str


PROFILE_PRESETS: dict[str, ProfilePresets] = {
    # component config (module.Class)              tiny                paper               demo
    "model.vae.VAEConfig":                         ProfilePresets("tiny", "884-16c-hy", "demo"),
    "model.dit_config.DiTConfig":                  ProfilePresets("tiny", "hunyuan-13b", "tiny"),
    "model.text.TextEncoderConfig":                ProfilePresets("offline-default", "official", "offline-default"),
    "model.vae_tiling.TilingConfig":               ProfilePresets("official", "balanced", "official"),
    "curation.config.CurationConfig":              ProfilePresets("tiny", "paper", "tiny"),
    "curation.camera_motion.CameraMotionConfig":   ProfilePresets("tiny", "paper", "tiny"),
    "curation.captions.config.CaptionConfig":      ProfilePresets("tiny", "paper", "tiny"),
    "training.vae.config.VAETrainConfig":          ProfilePresets("tiny", "paper", "demo"),
    "training.dit.config.DiTTrainConfig":          ProfilePresets("tiny-offline", "paper", "demo"),
    "training.scaling.plan.SweepConfig":           ProfilePresets("tiny", "paper", "tiny"),
    "serving.config.ServingConfig":                ProfilePresets("tiny", "paper", "tiny"),
    "evaluation.config.EvaluationConfig":          ProfilePresets("tiny", "paper", "tiny"),
    "evaluation.video_eval_config.VideoEvalConfig": ProfilePresets("tiny", "paper", "tiny"),
    "evaluation.vae_baselines.VaeFloorConfig":     ProfilePresets("tiny", "paper", "tiny"),
    "evaluation.human_eval.config.HumanEvalConfig": ProfilePresets("tiny", "paper", "tiny"),
    "ui.demo.DemoConfig":                          ProfilePresets("tiny", "paper", "tiny"),
    "orchestration.config.PlatformConfig":         ProfilePresets("tiny", "paper", "demo"),
}  # fmt: skip


def config_path(config_cls: type) -> str:
    """The `module.Class` key of a config class in `PROFILE_PRESETS`."""
    return f"{config_cls.__module__}.{config_cls.__qualname__}"


def preset_name(config_cls: type, profile: str) -> str:
    """The name of `config_cls`'s preset in `profile`; `ProfileError` for an unknown profile or class."""
    if profile not in PROFILES:
        raise ProfileError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    row = PROFILE_PRESETS.get(config_path(config_cls))
    if row is None:
        raise ProfileError(
            f"{config_path(config_cls)} has no row in orchestration.profiles.PROFILE_PRESETS; add one"
        )
    return str(getattr(row, profile))


def profile_config(config_cls: type[C], profile: str, **overrides: Any) -> C:
    """`config_cls.preset(<its preset in profile>, **overrides)`: a component's config for a profile."""
    return config_cls.preset(preset_name(config_cls, profile), **overrides)


def component_classes() -> list[type[PresetConfig]]:
    """Every config class of the table, imported (this imports every package)."""
    classes = []
    for path in PROFILE_PRESETS:
        module, _, name = path.rpartition(".")
        classes.append(getattr(importlib.import_module(module), name))
    return classes

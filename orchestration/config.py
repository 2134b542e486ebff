"""The platform configuration: one typed object, two profiles, YAML and environment overrides.

Precedence (later wins): the profile's preset (`PlatformConfig.PRESETS`, chosen through
orchestration.profiles) → a YAML file (`--config` or `VIDEOFOUNDRY_CONFIG`)
→ environment variables `VIDEOFOUNDRY_<SECTION>__<FIELD>` (e.g. `VIDEOFOUNDRY_COMPUTE__RAY_ADDRESS`).
Unknown keys are errors that name the key, so a typo never silently falls back to a default.

Scale is configuration: the `paper` profile changes addresses and sizes, never code paths. The
components' configs for the profile come from `PlatformConfig.config_for(Config)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model.presets import PresetConfig
from orchestration.profiles import PROFILES, Profile, profile_config
from orchestration.workspace import Workspace

C = TypeVar("C", bound=PresetConfig)
ENV_PREFIX = "VIDEOFOUNDRY_"


class ConfigError(ValueError):
    """A configuration source (file, key or value) is invalid; the message says which and why."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComputeConfig(_Section):
    """Where GPU/CPU work runs."""

    ray_address: str | None = Field(
        None, description="None starts a local Ray on 127.0.0.1; 'ray://head:10001' joins a cluster."
    )
    num_cpus: int | None = Field(2, description="CPUs a local Ray may use (None: all).")
    num_gpus_per_worker: float = Field(0.0, description="GPUs each training worker asks Ray for.")
    num_workers: int = Field(1, description="Training workers (one process per GPU at scale).")


class TrackingConfig(_Section):
    """Experiment tracking and the model registry (MLflow)."""

    mlflow_uri: str | None = Field(
        None, description="None: sqlite:///<home>/mlflow.db; at scale an http(s):// MLflow server."
    )
    artifact_uri: str | None = Field(
        None, description="None: <home>/mlartifacts; at scale s3://bucket/prefix."
    )
    experiment: str = Field("videofoundry", description="MLflow experiment name.")
    registered_model: str = Field("videofoundry-dit", description="Registry name of the DiT.")


class VersioningConfig(_Section):
    """Data versions of tables and shards."""

    backend: Literal["dvc", "lakefs"] = "dvc"
    dvc_remote: str | None = Field(None, description="None: <home>/dvc-remote; or s3://…")
    lakefs_endpoint: str | None = None
    lakefs_repository: str | None = None
    lakefs_branch: str = "main"


class PlatformConfig(PresetConfig, _Section):
    """Everything a run of the platform needs to know about its environment."""

    profile: Profile = "tiny"
    home: Path = Field(Path(".videofoundry"), description="The workspace (VIDEOFOUNDRY_HOME).")
    seed: int = 0
    compute: ComputeConfig = ComputeConfig()
    tracking: TrackingConfig = TrackingConfig()
    versioning: VersioningConfig = VersioningConfig()
    human_eval_db: str | None = Field(
        None, description="SQLAlchemy URL of the ratings store; None: sqlite:///<home>/human_eval.db."
    )
    sft_auto_accept_unreviewed: bool = Field(
        True,
        description="While no person has reviewed any SFT candidate, let sft_set hold every candidate "
        "(labelled as rule-selected). The tiny profile's demo needs it; the paper profile turns it off.",
    )

    def config_for(self, config_cls: type[C], **overrides: Any) -> C:
        """The component config `config_cls` in this platform's profile (orchestration.profiles)."""
        return profile_config(config_cls, self.profile, **overrides)

    # Where things live once the defaults are filled in: the one answer for the Dagster resources
    # (orchestration.resources) and the CLI commands alike.
    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home)

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking and registry URI (default: the workspace's SQLite file)."""
        return self.tracking.mlflow_uri or self.workspace.mlflow_uri

    @property
    def artifact_uri(self) -> str:
        """Where MLflow writes artifacts (default: the workspace's mlartifacts/ folder)."""
        return self.tracking.artifact_uri or self.workspace.mlflow_artifacts.as_uri()

    @property
    def human_eval_url(self) -> str:
        """SQLAlchemy URL of the ratings store (default: the workspace's SQLite file)."""
        return self.human_eval_db or f"sqlite:///{self.workspace.human_eval_db}"


PlatformConfig.PRESETS = {
    "tiny": PlatformConfig(),
    # The tiny platform; its VAE and DiT train longer (training.*.config "demo" presets).
    "demo": PlatformConfig(profile="demo"),
    "paper": PlatformConfig(
        profile="paper",
        compute=ComputeConfig(num_cpus=None, num_gpus_per_worker=1.0, num_workers=8),
        sft_auto_accept_unreviewed=False,
    ),
}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """`VIDEOFOUNDRY_A__B=v` → {'a': {'b': 'v'}}; `VIDEOFOUNDRY_HOME` and `_PROFILE` are top level."""
    # CONFIG names the YAML file; TEST_CORPUS is the test suite's corpus cache and CODE_VERSION the
    # registry's code version where there is no git checkout (training.dit.registry), not configuration.
    reserved = {"CONFIG", "TEST_CORPUS", "CODE_VERSION"}
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :]
        if key in reserved or not key:
            continue
        path = [part.lower() for part in key.split("__")]
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overrides


def read_yaml_mapping(path: Path, what: str = "config file") -> dict[str, Any]:
    """The mapping at the top of the YAML file `path`; `ConfigError` naming `what` (e.g. "--config")
    when it is missing, a folder, unreadable, not text, not YAML, or not a mapping."""
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give a YAML file")
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what} {path} is not a text (YAML) file") from error
    except OSError as error:
        raise ConfigError(f"{what} {path} cannot be read: {error.strerror}") from error
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping at the top level")
    return data


def load_config(
    profile: str | None = None,
    config_file: Path | str | None = None,
    environ: dict[str, str] | None = None,
    **overrides: Any,
) -> PlatformConfig:
    """Build the platform config from profile → YAML → environment → keyword overrides.

    Raises `ConfigError` naming the source and the bad key or value.
    """
    environ = dict(os.environ if environ is None else environ)
    env = _env_overrides(environ)
    chosen = profile or env.pop("profile", None) or "tiny"
    env.pop("profile", None)
    if chosen not in PROFILES:
        raise ConfigError(f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)}")
    data = profile_config(PlatformConfig, chosen).model_dump()
    file = config_file or environ.get(f"{ENV_PREFIX}CONFIG")
    if file:
        data = _deep_merge(data, read_yaml_mapping(Path(file)))
    data = _deep_merge(data, env)
    data = _deep_merge(data, {k: v for k, v in overrides.items() if v is not None})
    try:
        return PlatformConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        source = f" (from {file})" if file else ""
        raise ConfigError(f"invalid configuration{source}: {problems}") from error

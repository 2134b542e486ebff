"""Dagster resources: small interfaces, one implementation per environment, chosen in `build_resources`.

- `workspace`: the local workspace folder (tables, clips, checkpoints…); data versions go through the
  versioning backend named in the config.
- `tracking`: MLflow — `sqlite:///<home>/mlflow.db` by default, a server URI at scale.
- `compute`: Ray — a local loopback instance by default, `ray://head:10001` at scale.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from dagster import ConfigurableResource

from model.presets import PresetConfig
from orchestration.config import PlatformConfig, load_config
from orchestration.profiles import profile_config
from orchestration.versioning import DvcVersionStore, LakeFSVersionStore, VersionStore
from orchestration.workspace import Workspace
from training.tracking import TrackingSettings

C = TypeVar("C", bound=PresetConfig)


class WorkspaceResource(ConfigurableResource):
    """The workspace folder and the platform profile."""

    home: str
    profile: str = "tiny"

    @property
    def workspace(self) -> Workspace:
        return Workspace.at(self.home).ensure()

    @property
    def config(self) -> PlatformConfig:
        return load_config(self.profile, home=Path(self.home))

    def config_for(self, config_cls: type[C], **overrides: Any) -> C:
        """The component config `config_cls` in the workspace's profile (orchestration.profiles)."""
        return profile_config(config_cls, self.profile, **overrides)


class TrackingResource(ConfigurableResource):
    """Where MLflow runs and registered models live."""

    tracking_uri: str
    artifact_uri: str
    experiment: str = "videofoundry"
    registered_model: str = "videofoundry-dit"

    def settings(self) -> TrackingSettings:
        """The platform's tracking, which each training run specialises (experiment suffix, data version)."""
        return TrackingSettings(
            uri=self.tracking_uri,
            artifact_location=self.artifact_uri,
            experiment=self.experiment,
            registered_model=self.registered_model,
        )


class ComputeResource(ConfigurableResource):
    """Ray: `address` None starts a local instance bound to 127.0.0.1."""

    address: str | None = None
    num_cpus: int | None = 2

    def ensure_started(self) -> None:
        from media.ray_cluster import ensure_ray

        ensure_ray(self.address, self.num_cpus)


class VersioningResource(ConfigurableResource):
    """The data version store: DVC with a local or S3 remote (default) or a lakeFS repository."""

    backend: str = "dvc"
    root: str
    dvc_remote: str
    lakefs_endpoint: str | None = None
    lakefs_repository: str | None = None
    lakefs_branch: str = "main"

    def store(self) -> VersionStore:
        if self.backend == "lakefs":
            if not (self.lakefs_endpoint and self.lakefs_repository):
                raise ValueError(
                    "versioning.backend is lakefs but versioning.lakefs_endpoint/lakefs_repository are unset"
                )
            return LakeFSVersionStore(
                self.lakefs_endpoint,
                self.lakefs_repository,
                self.lakefs_branch,
                access_key_id=os.environ.get("LAKEFS_ACCESS_KEY_ID"),
                secret_access_key=os.environ.get("LAKEFS_SECRET_ACCESS_KEY"),
                root=Path(self.root),
            )
        return DvcVersionStore(Path(self.root), self.dvc_remote, s3_remote_options(self.dvc_remote))


class HumanEvalResource(ConfigurableResource):
    """The ratings store (SQLite file by default, Postgres at scale) and the SFT selection policy."""

    db_url: str
    sft_auto_accept_unreviewed: bool = False


def s3_remote_options(remote: str) -> dict[str, str]:
    """DVC S3 remote options from the standard AWS variables (endpoint for SeaweedFS/MinIO)."""
    if not remote.startswith("s3://"):
        return {}
    names = {
        "endpointurl": "AWS_ENDPOINT_URL",
        "access_key_id": "AWS_ACCESS_KEY_ID",
        "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    }
    return {key: os.environ[var] for key, var in names.items() if os.environ.get(var)}


def tracking_resource(config: PlatformConfig) -> TrackingResource:
    """MLflow of `config`: its URIs, else the workspace's SQLite store and artifact folder."""
    return TrackingResource(
        tracking_uri=config.tracking_uri,
        artifact_uri=config.artifact_uri,
        experiment=config.tracking.experiment,
        registered_model=config.tracking.registered_model,
    )


def build_resources(config: PlatformConfig) -> dict[str, ConfigurableResource]:
    """The one place that maps a configuration to resource implementations."""
    workspace = config.workspace
    return {
        "workspace": WorkspaceResource(home=str(workspace.home), profile=config.profile),
        "tracking": tracking_resource(config),
        "compute": ComputeResource(address=config.compute.ray_address, num_cpus=config.compute.num_cpus),
        "human_eval": HumanEvalResource(
            db_url=config.human_eval_url,
            sft_auto_accept_unreviewed=config.sft_auto_accept_unreviewed,
        ),
        "versioning": VersioningResource(
            backend=config.versioning.backend,
            root=str(workspace.home),
            dvc_remote=config.versioning.dvc_remote or str(workspace.dvc_remote),
            lakefs_endpoint=config.versioning.lakefs_endpoint,
            lakefs_repository=config.versioning.lakefs_repository,
            lakefs_branch=config.versioning.lakefs_branch,
        ),
    }

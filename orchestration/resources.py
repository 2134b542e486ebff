"""Dagster resources: small interfaces, one implementation per environment, chosen in `build_resources`.

- `workspace`: the local workspace folder (tables, clips, checkpoints…); data versions go through the
  versioning backend named in the config.
- `tracking`: MLflow — `sqlite:///<home>/mlflow.db` by default, a server URI at scale.
- `compute`: Ray — a local loopback instance by default, `ray://head:10001` at scale.
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from orchestration.config import PlatformConfig, load_config
from orchestration.workspace import Workspace


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


class TrackingResource(ConfigurableResource):
    """Where MLflow runs and registered models live."""

    tracking_uri: str
    artifact_uri: str
    experiment: str = "videofoundry"
    registered_model: str = "videofoundry-dit"


class ComputeResource(ConfigurableResource):
    """Ray: `address` None starts a local instance bound to 127.0.0.1."""

    address: str | None = None
    num_cpus: int | None = 2

    def ensure_started(self) -> None:
        from curation.ray_runtime import ensure_ray

        ensure_ray(self.address, self.num_cpus)


def build_resources(config: PlatformConfig) -> dict[str, ConfigurableResource]:
    """The one place that maps a configuration to resource implementations."""
    workspace = Workspace.at(config.home)
    return {
        "workspace": WorkspaceResource(home=str(workspace.home), profile=config.profile),
        "tracking": TrackingResource(
            tracking_uri=config.tracking.mlflow_uri or workspace.mlflow_uri,
            artifact_uri=config.tracking.artifact_uri or workspace.mlflow_artifacts.as_uri(),
            experiment=config.tracking.experiment,
            registered_model=config.tracking.registered_model,
        ),
        "compute": ComputeResource(address=config.compute.ray_address, num_cpus=config.compute.num_cpus),
    }

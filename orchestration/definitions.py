"""The Dagster `Definitions` of the platform: every asset module in `assets/`, with resources.

`dagster dev -m orchestration.definitions` (or `videofoundry up`) loads `defs`. The workspace and
profile come from the platform configuration (`VIDEOFOUNDRY_HOME`, `VIDEOFOUNDRY_PROFILE`, …).
"""

from __future__ import annotations

import dagster as dg

import assets
from orchestration.config import PlatformConfig, load_config
from orchestration.resources import build_resources


def build_definitions(config: PlatformConfig | None = None) -> dg.Definitions:
    """All assets, checks, jobs, schedules and sensors, bound to `config`'s resources."""
    config = config or load_config()
    return dg.Definitions(
        assets=dg.load_assets_from_package_module(assets),
        asset_checks=dg.load_asset_checks_from_package_module(assets),
        resources=build_resources(config),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded lazily by `dagster dev -m orchestration.definitions`; importing this module is cheap."""
    return build_definitions()

"""The Dagster `Definitions` of the platform: every asset module in `assets/`, with resources.

`dagster dev -m orchestration.definitions` (or `videofoundry up`) loads `defs`. The workspace and
profile come from the platform configuration (`VIDEOFOUNDRY_HOME`, `VIDEOFOUNDRY_PROFILE`, …).
"""

from __future__ import annotations

import dagster as dg

import assets
from model.cuda_allocator import prefer_expandable_segments
from orchestration.automation import (
    build_promotion_sensor,
    build_raw_batch_sensor,
    build_schedules,
)
from orchestration.config import PlatformConfig, load_config
from orchestration.jobs import lineage_jobs
from orchestration.resources import build_resources


def build_definitions(config: PlatformConfig | None = None) -> dg.Definitions:
    """All assets, checks, jobs, schedules and sensors, bound to `config`'s resources."""
    config = config or load_config()
    prefer_expandable_segments()  # assets run in this process (or its children) after this: GPU ones fragment less
    resources = build_resources(config)
    asset_defs = [a for a in dg.load_assets_from_package_module(assets) if isinstance(a, dg.AssetsDefinition)]
    return dg.Definitions(
        assets=asset_defs,
        asset_checks=dg.load_asset_checks_from_package_module(assets),
        jobs=lineage_jobs(asset_defs),
        schedules=build_schedules({key for a in asset_defs for key in a.keys}),
        sensors=[
            build_raw_batch_sensor(config.workspace.raw),
            build_promotion_sensor(config.human_eval_url),
        ],
        resources=resources,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded lazily by `dagster dev -m orchestration.definitions`; importing this module is cheap."""
    return build_definitions()

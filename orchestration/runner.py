"""Materializing the lineage in-process, against the workspace's persistent Dagster instance.

The runs land in `<home>/dagster` (SQLite storage), so `videofoundry up` shows them in the UI.
Partitioned assets (one partition per raw ingest batch) run once per batch; unpartitioned assets
(global dedup, tiers, training…) run once, after the partitioned ones they depend on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from curation.ingest import list_batches
from orchestration.config import PlatformConfig
from orchestration.workspace import Workspace, atomic_write_text

DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
"""


class SelectionError(ValueError):
    """The asset selection string matches nothing or does not parse."""


def dagster_instance(workspace: Workspace) -> dg.DagsterInstance:
    """The persistent instance under `<home>/dagster` (creates its dagster.yaml once)."""
    home = workspace.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "dagster.yaml"
    if not config_file.exists():
        atomic_write_text(config_file, DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.from_config(str(home))


def register_raw_batches(instance: dg.DagsterInstance, workspace: Workspace) -> list[str]:
    """Add a `raw_batches` partition for every folder under raw/; return all batch names."""
    batches = list_batches(workspace.raw)
    known = set(instance.get_dynamic_partitions("raw_batches"))
    new = [b for b in batches if b not in known]
    if new:
        instance.add_dynamic_partitions("raw_batches", new)
    return batches


@dataclass
class RunSummary:
    """What `run_lineage` materialized: one entry per Dagster run."""

    runs: list[tuple[str, str | None, str]] = field(default_factory=list)  # (asset, partition, outcome)

    @property
    def success(self) -> bool:
        return all(outcome != "failed" for _, _, outcome in self.runs)

    def count(self, outcome: str) -> int:
        return sum(1 for _, _, o in self.runs if o == outcome)


def _topological(defs: dg.Definitions, keys: set[dg.AssetKey]) -> list[dg.AssetKey]:
    asset_graph = defs.resolve_asset_graph()
    return [k for level in asset_graph.toposorted_asset_keys_by_level for k in sorted(level) if k in keys]


def _stale_status(
    instance: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey, partition: str | None
):
    # Dagster's own staleness (data versions of parents + code versions), as the UI shows it.
    # The resolver is internal API: pinned dagster==1.13.28 (pyproject) keeps it stable.
    from dagster._utils.test.data_versions import get_stale_status_resolver

    resolver = get_stale_status_resolver(
        instance, [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    )
    return resolver.get_status(key, partition)


def resolve_selection(defs: dg.Definitions, select: str | None) -> set[dg.AssetKey]:
    """Asset keys matched by a Dagster selection string (None: every asset)."""
    asset_graph = defs.resolve_asset_graph()
    all_keys = set(asset_graph.materializable_asset_keys)
    if not select:
        return all_keys
    try:
        selection = dg.AssetSelection.from_string(select)
        keys = set(selection.resolve(asset_graph))
    except Exception as error:  # Dagster raises several parser error types
        raise SelectionError(f"cannot parse asset selection {select!r}: {error}") from error
    if not keys:
        raise SelectionError(f"asset selection {select!r} matches no asset; see `videofoundry run --help`")
    return keys & all_keys


def run_lineage(
    defs: dg.Definitions,
    config: PlatformConfig,
    select: str | None = None,
    on_run: Callable[[str, str | None, str], None] | None = None,
    force: bool = False,
) -> RunSummary:
    """Materialize the selected assets (all by default) in dependency order, in-process.

    Root assets (those with no upstream, e.g. `raw_videos`) always run: they observe the world.
    Every other asset (partition) runs only when Dagster marks it MISSING or STALE (a parent's data
    version or its code version changed), unless `force`. `on_run(asset, partition, outcome)` is
    told "ok", "failed" or "fresh" (skipped) for each.
    """
    from dagster._core.definitions.data_version import StaleStatus

    workspace = Workspace.at(config.home).ensure()
    instance = dagster_instance(workspace)
    batches = register_raw_batches(instance, workspace)
    keys = resolve_selection(defs, select)
    asset_graph = defs.resolve_asset_graph()
    summary = RunSummary()
    asset_defs: Sequence = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = dict(defs.resources or {})
    for key in _topological(defs, keys):
        node = asset_graph.get(key)
        is_root = not node.parent_keys
        label = key.to_user_string()
        for partition in batches if node.partitions_def is not None else [None]:
            if not (force or is_root):
                status = _stale_status(instance, defs, key, partition)
                if status == StaleStatus.FRESH:
                    summary.runs.append((label, partition, "fresh"))
                    if on_run:
                        on_run(label, partition, "fresh")
                    continue
            result = dg.materialize(
                asset_defs,
                selection=[key],
                instance=instance,
                resources=resources,
                partition_key=partition,
                raise_on_error=False,
            )
            outcome = "ok" if result.success else "failed"
            summary.runs.append((label, partition, outcome))
            if on_run:
                on_run(label, partition, outcome)
            if not result.success:
                return summary
    return summary

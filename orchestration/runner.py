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

    runs: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (assets, partition, ok)

    @property
    def success(self) -> bool:
        return all(ok for _, _, ok in self.runs)


def _segments(graph: dg.Definitions, keys: set[dg.AssetKey]) -> list[tuple[bool, list[dg.AssetKey]]]:
    """Topologically ordered runs of keys that share partitioned-ness."""
    asset_graph = graph.resolve_asset_graph()
    ordered = [k for level in asset_graph.toposorted_asset_keys_by_level for k in sorted(level) if k in keys]
    segments: list[tuple[bool, list[dg.AssetKey]]] = []
    for key in ordered:
        partitioned = asset_graph.get(key).partitions_def is not None
        if segments and segments[-1][0] == partitioned:
            segments[-1][1].append(key)
        else:
            segments.append((partitioned, [key]))
    return segments


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
    on_run: Callable[[str, str | None, bool], None] | None = None,
) -> RunSummary:
    """Materialize the selected assets (all by default) in dependency order, in-process."""
    workspace = Workspace.at(config.home).ensure()
    instance = dagster_instance(workspace)
    batches = register_raw_batches(instance, workspace)
    keys = resolve_selection(defs, select)
    summary = RunSummary()
    asset_defs: Sequence = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = dict(defs.resources or {})
    for partitioned, segment in _segments(defs, keys):
        label = ", ".join(k.to_user_string() for k in segment)
        for partition in batches if partitioned else [None]:
            result = dg.materialize(
                asset_defs,
                selection=segment,
                instance=instance,
                resources=resources,
                partition_key=partition,
                raise_on_error=False,
            )
            summary.runs.append((label, partition, result.success))
            if on_run:
                on_run(label, partition, result.success)
            if not result.success:
                return summary
    return summary

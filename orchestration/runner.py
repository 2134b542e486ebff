"""Materializing the lineage in-process, against the workspace's persistent Dagster instance.

The runs land in `<home>/dagster` (SQLite storage), so `videofoundry up` shows them in the UI.
Partitioned assets (one partition per raw ingest batch) run once per batch; unpartitioned assets
(global dedup, tiers, training…) run once, after the partitioned ones they depend on. What is up to
date is skipped, by Dagster's staleness rules read from its event log (orchestration.staleness).
Only public Dagster APIs are used.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from assets.partitions import raw_batches
from curation.ingest import list_batches
from orchestration.config import PlatformConfig
from orchestration.interrupted import fail_interrupted_runs, owner_tag
from orchestration.staleness import LineageGraph, staleness
from orchestration.workspace import Workspace, atomic_write_text

# Dagster's defaults otherwise: SQLite storage under DAGSTER_HOME, and runs launched from the UI
# or by sensors are queued and started by the daemon that `dagster dev` runs. Every run's events,
# DEBUG included, also go to DAGSTER_LOG in that folder; the console shows warnings only
# (`run_lineage`), so a lineage run prints one line per asset plus the progress bars.
DAGSTER_LOG = "dagster.log"
DAGSTER_YAML = """\
telemetry:
  enabled: false
python_logs:
  dagster_handler_config:
    handlers:
      debug_file:
        class: logging.FileHandler
        level: DEBUG
        filename: {log_file}
        formatter: timestamped
    formatters:
      timestamped:
        format: "%(asctime)s %(levelname)s %(message)s"
"""
# Dagster's notices that an API is beta speak to library authors; the version is pinned.
warnings.filterwarnings("ignore", category=dg.BetaWarning)


class SelectionError(ValueError):
    """The asset selection string matches nothing or does not parse."""


def dagster_instance(workspace: Workspace) -> dg.DagsterInstance:
    """The persistent instance under `<home>/dagster` (writes its dagster.yaml when it differs)."""
    home = workspace.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "dagster.yaml"
    wanted = DAGSTER_YAML.format(log_file=json.dumps(str(dagster_log(workspace))))
    if not config_file.exists() or config_file.read_text() != wanted:
        atomic_write_text(config_file, wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.from_config(str(home))


def dagster_log(workspace: Workspace) -> Path:
    """The file that holds every Dagster event of the workspace's runs, DEBUG included."""
    return workspace.dagster_home / DAGSTER_LOG


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


def resolve_selection(defs: dg.Definitions, select: str | None) -> set[dg.AssetKey]:
    """Asset keys matched by a Dagster selection string (None: every asset)."""
    graph = LineageGraph.of(defs)
    all_keys = set(graph.nodes)
    if not select:
        return all_keys
    try:
        selection = dg.AssetSelection.from_string(select)
        keys = set(selection.resolve(graph.assets))
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
    console_log_level: str = "WARNING",
) -> RunSummary:
    """Materialize the selected assets (all by default) in dependency order, in-process.

    Root assets (those with no upstream, e.g. `raw_videos`) always run: they observe the world.
    Every other asset (partition) runs only when it is MISSING or STALE (its code version or a
    parent's data version changed; orchestration.staleness), unless `force`. `on_run(asset,
    partition, outcome)` is told "ok", "failed" or "fresh" (skipped) for each; the first failure
    stops the run. Dagster's console logger shows `console_log_level` and above; the instance's
    log file (`dagster_log`) gets every event. Runs a killed command left STARTED are reported failed first, and
    this call's own runs are if it unwinds mid-run (`orchestration.interrupted`).
    """
    run_config = {"loggers": {"console": {"config": {"log_level": console_log_level}}}}
    workspace = Workspace.at(config.home).ensure()
    instance = dagster_instance(workspace)
    fail_interrupted_runs(instance)
    try:
        return _run_selected(defs, instance, workspace, select, on_run, force, run_config)
    finally:
        fail_interrupted_runs(instance, include_own=True)  # only non-empty when unwinding mid-run


def _run_selected(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    workspace: Workspace,
    select: str | None,
    on_run: Callable[[str, str | None, str], None] | None,
    force: bool,
    run_config: dict[str, Any],
) -> RunSummary:
    batches = register_raw_batches(instance, workspace)
    graph = LineageGraph.of(defs)
    summary = RunSummary()
    asset_defs: Sequence = list(defs.assets or []) + list(defs.asset_checks or [])
    resources = dict(defs.resources or {})
    for key in graph.toposorted(resolve_selection(defs, select)):
        label, observes_the_world = key.to_user_string(), not graph[key].parents
        # Batches whose folder is gone stay partitions in Dagster's history but are not run again.
        partitions = (
            batches if graph[key].partitions_def == raw_batches else graph.partition_keys(key, instance)
        )
        for partition in partitions:
            up_to_date = not (force or observes_the_world) and (
                staleness(instance, graph, key, partition).status == "fresh"
            )
            if up_to_date:
                outcome = "fresh"
            else:
                result = dg.materialize(
                    asset_defs,
                    selection=[key],
                    instance=instance,
                    resources=resources,
                    partition_key=partition,
                    run_config=run_config,
                    raise_on_error=False,
                    tags=owner_tag(),
                )
                outcome = "ok" if result.success else "failed"
            summary.runs.append((label, partition, outcome))
            if on_run:
                on_run(label, partition, outcome)
            if outcome == "failed":
                return summary
    return summary

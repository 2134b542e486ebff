"""Materializing the lineage in-process, against the workspace's persistent Dagster instance.

The runs land in `<home>/dagster` (SQLite storage), so `videofoundry up` shows them in the UI.
The selection runs as named job runs (orchestration.jobs), not one ad-hoc run per asset: per raw
ingest batch one `ingest_batch` run of the partitioned curation assets, then one `lineage` run of
the unpartitioned rest (global dedup, tiers, training…), so the UI's Jobs, timeline and Re-execute
show them. What is up to date is left out of the run, by Dagster's staleness rules read from its
event log (orchestration.staleness); a second run follows only when a root (which always re-observes
the world) changed data its children read. Only public Dagster APIs are used.
"""

from __future__ import annotations

import graphlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from assets.partitions import raw_batches
from curation.ingest import list_batches
from orchestration.config import PlatformConfig
from orchestration.interrupted import fail_interrupted_runs, owner_tag
from orchestration.jobs import job_name, with_lineage_jobs
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
    """What `run_lineage` did: an outcome per asset (partition), and the job runs it started."""

    runs: list[tuple[str, str | None, str]] = field(default_factory=list)  # (asset, partition, outcome)
    job_runs: list[str] = field(default_factory=list)  # the Dagster run ids, one per job run

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
    defs = with_lineage_jobs(defs)
    summary = RunSummary()

    def report(key: dg.AssetKey, partition: str | None, outcome: str) -> None:
        summary.runs.append((key.to_user_string(), partition, outcome))
        if on_run:
            on_run(key.to_user_string(), partition, outcome)

    for partitions_def, keys in _groups(graph, graph.toposorted(resolve_selection(defs, select))):
        # Batches whose folder is gone stay partitions in Dagster's history but are not run again.
        partitions = batches if partitions_def == raw_batches else graph.partition_keys(keys[0], instance)
        job = defs.resolve_job_def(job_name(partitions_def))
        for partition in partitions:
            done: set[dg.AssetKey] = set()
            while planned := _plan(instance, graph, keys, partition, force, done):
                result = job.execute_in_process(
                    run_config=run_config,
                    instance=instance,
                    partition_key=partition,
                    asset_selection=planned,
                    raise_on_error=False,
                    tags=owner_tag(),
                )
                summary.job_runs.append(result.run_id)
                outcomes = _outcomes(result, planned)
                for key, outcome in outcomes.items():
                    report(key, partition, outcome)
                if "failed" in outcomes.values():
                    return summary
                done.update(planned)
            for key in keys:
                if key not in done:
                    report(key, partition, "fresh")
    return summary


def _groups(
    graph: LineageGraph, keys: list[dg.AssetKey]
) -> list[tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]]:
    """`keys` (toposorted) split by partitions definition, the groups in dependency order (a
    Dagster run covers one partition key, so each group runs through its own job)."""
    groups: list[tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]] = []
    for key in keys:
        pdef = graph[key].partitions_def
        group = next((members for other, members in groups if other == pdef), None)
        if group is None:
            groups.append((pdef, group := []))
        group.append(key)
    index = {key: i for i, (_, members) in enumerate(groups) for key in members}
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter(
        {
            i: {index[p] for k in members for p in graph[k].parents if p in index} - {i}
            for i, (_, members) in enumerate(groups)
        }
    )
    try:
        order = list(sorter.static_order())
    except graphlib.CycleError as error:
        raise SelectionError(
            "the selection goes from unpartitioned to partitioned assets and back; select each side apart"
        ) from error
    return [groups[i] for i in order]


def _plan(
    instance: dg.DagsterInstance,
    graph: LineageGraph,
    keys: list[dg.AssetKey],
    partition: str | None,
    force: bool,
    done: set[dg.AssetKey],
) -> list[dg.AssetKey]:
    """What the next job run materializes of `keys` (toposorted) at `partition`, none of `done`.

    A root always runs once (it observes the world). Another asset runs when it is missing or
    stale (orchestration.staleness), or forced, or when a parent that is not a root runs before it
    in this plan (its data will change). A child of a root whose data may not have changed waits
    for the next plan, which reads the root's new data version.
    """
    planned: list[dg.AssetKey] = []
    for key in keys:
        if key in done:
            continue
        parents = graph[key].parents
        runs = (
            force
            or not parents
            or any(p in planned and graph[p].parents for p in parents)
            or staleness(instance, graph, key, partition).status != "fresh"
        )
        if runs:
            planned.append(key)
    return planned


def _outcomes(result: dg.ExecuteInProcessResult, planned: list[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """ "ok" per planned asset the run materialized (with its checks passed, when the run failed),
    then "failed" for the first other one; the rest did not run because of it and are left out."""
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    if result.success:
        return {key: "ok" for key in planned}
    failed_checks = {e.asset_key for e in result.get_asset_check_evaluations() if not e.passed}
    outcomes = {key: "ok" for key in planned if key in materialized and key not in failed_checks}
    first_failed = next((key for key in planned if key not in outcomes), planned[-1])
    return outcomes | {first_failed: "failed"}

"""Whether an asset (partition) is missing, stale or fresh, read from Dagster's public event log.

Every materialization carries Dagster's provenance tags: `dagster/code_version`,
`dagster/data_version`, and per parent `dagster/input_data_version/<parent>` and
`dagster/input_event_pointer/<parent>` (the storage id of the parent's newest materialization, any
partition, when the child ran). From them, for one asset partition (or an unpartitioned asset):

- MISSING: it was never materialized.
- STALE: its code version differs from the recorded one (when it declares one); a parent was added
  or removed; or a parent's data changed since. An unpartitioned parent changed when its newest data
  version differs from the recorded input data version. A partitioned parent changed when a
  partition the child reads was materialized after the recorded pointer with another data version
  than it had at the pointer (or was first materialized after it).
- FRESH otherwise.

These are the rules of Dagster's own stale status (the one its UI shows), computed here through
`DagsterInstance.fetch_materializations` only. A partitioned child reads the same partition of a
parent partitioned the same way (Dagster's default identity mapping), every partition otherwise.
Parents outside the graph (external assets) are not followed.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import dagster as dg

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
INPUT_DATA_VERSION_TAG = "dagster/input_data_version/"
INPUT_EVENT_POINTER_TAG = "dagster/input_event_pointer/"
# The data version Dagster records for an input that was never materialized or observed.
INITIAL_DATA_VERSION = "INITIAL"


@dataclass(frozen=True)
class Staleness:
    """`status` of one asset partition and, when stale, why (one line per cause)."""

    status: Literal["missing", "stale", "fresh"]
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AssetNode:
    """What staleness needs to know of one asset: its parents, partitions and code version."""

    key: dg.AssetKey
    parents: frozenset[dg.AssetKey]
    partitions_def: dg.PartitionsDefinition | None
    code_version: str | None
    identity_parents: frozenset[dg.AssetKey]  # parents read partition by partition


class LineageGraph:
    """The materializable assets of a `Definitions` as a DAG, built from public `AssetsDefinition` data."""

    def __init__(self, assets: Iterable[dg.AssetsDefinition]) -> None:
        self.assets = list(assets)
        self.nodes: dict[dg.AssetKey, AssetNode] = {}
        for definition in self.assets:
            for key in definition.keys:
                parents = frozenset(definition.asset_deps.get(key, ()))
                identity = frozenset(p for p in parents if _reads_same_partition(definition, p, self.assets))
                spec = definition.get_asset_spec(key)
                self.nodes[key] = AssetNode(
                    key, parents, definition.partitions_def, spec.code_version, identity
                )

    @classmethod
    def of(cls, defs: dg.Definitions) -> LineageGraph:
        return cls(a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition))

    def __getitem__(self, key: dg.AssetKey) -> AssetNode:
        return self.nodes[key]

    def toposorted(self, keys: Iterable[dg.AssetKey]) -> list[dg.AssetKey]:
        """`keys` parents first; keys at the same depth in name order."""
        wanted = set(keys)
        sorter = graphlib.TopologicalSorter(
            {key: node.parents & self.nodes.keys() for key, node in self.nodes.items()}
        )
        sorter.prepare()
        ordered: list[dg.AssetKey] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=lambda k: k.to_user_string())
            ordered += [key for key in ready if key in wanted]
            sorter.done(*ready)
        return ordered

    def partition_keys(self, key: dg.AssetKey, instance: dg.DagsterInstance) -> list[str | None]:
        """Every partition of `key` ([None] for an unpartitioned asset)."""
        partitions_def = self.nodes[key].partitions_def
        if partitions_def is None:
            return [None]
        return list(partitions_def.get_partition_keys(dynamic_partitions_store=instance))


def _reads_same_partition(
    child: dg.AssetsDefinition, parent: dg.AssetKey, assets: Sequence[dg.AssetsDefinition]
) -> bool:
    parent_def = next((a for a in assets if parent in a.keys), None)
    if (
        child.partitions_def is None
        or parent_def is None
        or parent_def.partitions_def != child.partitions_def
    ):
        return False
    mapping = child.get_partition_mapping(parent)
    return mapping is None or isinstance(mapping, dg.IdentityPartitionMapping)


def staleness(
    instance: dg.DagsterInstance, graph: LineageGraph, key: dg.AssetKey, partition: str | None = None
) -> Staleness:
    """MISSING, STALE (with its causes) or FRESH for `key` (at `partition`); see the module docstring."""
    record = _newest(instance, key, partition)
    if record is None:
        return Staleness("missing")
    node = graph[key]
    tags = _tags(record)
    causes: list[str] = []
    recorded_code = tags.get(CODE_VERSION_TAG)
    if node.code_version is not None and recorded_code != node.code_version:
        causes.append(f"code version {recorded_code} is now {node.code_version}")
    recorded_parents = {
        name[len(INPUT_DATA_VERSION_TAG) :] for name in tags if name.startswith(INPUT_DATA_VERSION_TAG)
    }
    current_parents = {parent.to_user_string(): parent for parent in node.parents if parent in graph.nodes}
    all_parents = {parent.to_user_string() for parent in node.parents}
    causes += [f"no longer depends on {name}" for name in sorted(recorded_parents - all_parents)]
    for name, parent in sorted(current_parents.items()):
        if name not in recorded_parents:
            causes.append(f"new dependency on {name}")
        elif graph[parent].partitions_def is None:
            causes += _unpartitioned_parent_changes(instance, parent, tags)
        else:
            reads = [partition] if parent in node.identity_parents else graph.partition_keys(parent, instance)
            causes += _partitioned_parent_changes(instance, parent, reads, tags)
    return Staleness("stale", tuple(causes)) if causes else Staleness("fresh")


def _unpartitioned_parent_changes(
    instance: dg.DagsterInstance, parent: dg.AssetKey, tags: dict[str, str]
) -> list[str]:
    name = parent.to_user_string()
    recorded = tags.get(INPUT_DATA_VERSION_TAG + name)
    newest = _newest(instance, parent, None, observations=True)
    current = _tags(newest).get(DATA_VERSION_TAG) if newest is not None else None
    if current == recorded or (current is None and recorded == INITIAL_DATA_VERSION):
        return []
    return [f"{name} has a new data version"]


def _partitioned_parent_changes(
    instance: dg.DagsterInstance, parent: dg.AssetKey, partitions: Sequence[str | None], tags: dict[str, str]
) -> list[str]:
    name = parent.to_user_string()
    pointer = tags.get(INPUT_EVENT_POINTER_TAG + name, "")
    seen_until = int(pointer) if pointer.isdigit() else None
    changes = []
    for partition in partitions:
        newest = _newest(instance, parent, partition)
        if newest is None:
            changes.append(f"{name}[{partition}] was never materialized")
            continue
        if seen_until is not None and newest.storage_id <= seen_until:
            continue  # not materialized again since the child ran
        seen = _newest(instance, parent, partition, before=seen_until + 1) if seen_until is not None else None
        if seen is None or _tags(seen).get(DATA_VERSION_TAG) != _tags(newest).get(DATA_VERSION_TAG):
            changes.append(f"{name}[{partition}] has a new data version")
    return changes


def _newest(
    instance: dg.DagsterInstance,
    key: dg.AssetKey,
    partition: str | None,
    before: int | None = None,
    observations: bool = False,
) -> dg.EventLogRecord | None:
    """The newest materialization of `key` (at `partition`), optionally before storage id `before`.

    With `observations`, an observation counts too (an observable source asset, such as the scaling
    sweep's runs, records its data version by being observed, never materialized).
    """
    records_filter = dg.AssetRecordsFilter(
        asset_key=key,
        asset_partitions=[partition] if partition is not None else None,
        before_storage_id=before,
    )
    records = list(instance.fetch_materializations(records_filter, limit=1).records)
    if observations:
        records += instance.fetch_observations(records_filter, limit=1).records
    return max(records, key=lambda record: record.storage_id, default=None)


def _tags(record: dg.EventLogRecord) -> dict[str, str]:
    event = record.asset_materialization or record.asset_observation
    return dict(event.tags or {}) if event is not None else {}

"""The named jobs `videofoundry run` executes: one per partitions definition of the lineage.

A Dagster run covers one partition key, so the lineage needs one job per way of partitioning: the
per-batch curation assets (`ingest_batch`, the job the raw-batch sensor also starts) and the
unpartitioned rest (`lineage`). They are part of the `Definitions` the UI loads, so the runs of
`videofoundry run` appear under Jobs and on the timeline, and the UI can re-execute them.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.partitions import raw_batches
from orchestration.automation import INGEST_JOB, build_ingest_job

LINEAGE_JOB = "lineage"


def job_name(partitions_def: dg.PartitionsDefinition | None) -> str:
    """The job that runs the assets partitioned by `partitions_def` (None: unpartitioned)."""
    if partitions_def is None:
        return LINEAGE_JOB
    if partitions_def == raw_batches:
        return INGEST_JOB
    name = getattr(partitions_def, "name", None) or type(partitions_def).__name__
    return f"{LINEAGE_JOB}_{name}"


def lineage_jobs(assets: Sequence[dg.AssetsDefinition]) -> list[dg.UnresolvedAssetJobDefinition]:
    """One asset job per partitions definition among `assets`, each over every asset so partitioned."""
    groups: list[tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]] = []
    for definition in assets:
        group = next((keys for pdef, keys in groups if pdef == definition.partitions_def), None)
        if group is None:
            groups.append((definition.partitions_def, group := []))
        group.extend(definition.keys)
    jobs = []
    for partitions_def, keys in groups:
        if partitions_def == raw_batches:
            jobs.append(build_ingest_job(assets))
            continue
        jobs.append(
            dg.define_asset_job(
                job_name(partitions_def),
                selection=dg.AssetSelection.assets(*sorted(keys)),
                partitions_def=partitions_def,
                description="The lineage's assets as `videofoundry run` materializes them, one run per call.",
            )
        )
    return jobs


def with_lineage_jobs(defs: dg.Definitions) -> dg.Definitions:
    """`defs` plus those of `lineage_jobs` it lacks (a `Definitions` built without them, as in tests)."""
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    present = {job.name for job in defs.jobs or []}
    missing = [job for job in lineage_jobs(assets) if job.name not in present]
    return dg.Definitions.merge(defs, dg.Definitions(jobs=missing)) if missing else defs

"""Committing a materialized table to the data version store, for the asset's metadata."""

from pathlib import Path

import dagster as dg

from orchestration.resources import VersioningResource


def commit_version(versioning: VersioningResource, path: Path, message: str) -> dict[str, dg.MetadataValue]:
    """Commit `path` (a table or a folder of partitions); return metadata naming the version."""
    version = versioning.store().commit(path, message)
    return {"data_version": dg.MetadataValue.text(version.ref)}

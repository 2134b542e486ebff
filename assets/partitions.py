"""Partitions shared by the lineage: one per raw ingest batch (far fewer than clips)."""

from dagster import DynamicPartitionsDefinition

raw_batches = DynamicPartitionsDefinition(name="raw_batches")

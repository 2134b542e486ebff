"""Parquet tables of the workspace: atomic writes and schema checks.

Every table the platform writes goes through `write_table`, so a crash mid-write never leaves a
half-written file: readers see the previous version or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class SchemaError(ValueError):
    """A table does not have the columns/types its schema requires."""


def write_table(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> Path:
    """Atomically write `table` to `path` (Parquet); validate against `schema` first if given."""
    if schema is not None:
        check_schema(table, schema, name=path.stem)
        table = table.select(schema.names).cast(schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read a Parquet file or a folder of Parquet parts; validate against `schema` if given."""
    if not path.exists():
        raise FileNotFoundError(f"table {path} does not exist; materialize its upstream asset first")
    table = pq.read_table(path) if path.is_file() else pq.ParquetDataset(path).read()
    if schema is not None:
        check_schema(table, schema, name=path.stem)
    return table


def check_schema(table: pa.Table, schema: pa.Schema, name: str = "table") -> None:
    """Raise `SchemaError` listing missing columns and type mismatches."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"{name}: missing columns {missing}")
    wrong = [
        f"{f.name} is {table.schema.field(f.name).type}, expected {f.type}"
        for f in schema
        if not table.schema.field(f.name).type.equals(f.type)
        and not _castable(table.schema.field(f.name).type, f.type)
    ]
    if wrong:
        raise SchemaError(f"{name}: " + "; ".join(wrong))


def _castable(actual: pa.DataType, expected: pa.DataType) -> bool:
    # Null columns (an empty batch) and widening integer/float casts are accepted.
    if pa.types.is_null(actual):
        return True
    numeric = (pa.types.is_integer, pa.types.is_floating)
    return any(kind(actual) and kind(expected) for kind in numeric)

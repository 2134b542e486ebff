"""Parquet tables: where they lie, atomic writes, reads with schema checks.

A table `name` under a tables folder is either single, one file `name.parquet`, or partitioned, a
folder `name/` holding one entry per partition (`name/<partition>.parquet`, e.g. one per raw batch).
A partition entry is one Parquet file, or a folder of part files (`<partition>.parquet/*.parquet`)
when many workers wrote it at once. `table_path` is the one place that knows this layout;
`read_table` reads every form. Rows of a part-folder partition have no order across parts: readers
that need one sort.

Writes go to a temporary file beside the target that `os.replace` moves into place, so a crash
mid-write never leaves a half-written file: readers see the previous version or the new one. A
part-folder partition is filled in a hidden staging folder (`staging_folder`) and moved into place
by `publish_folder`. Files are made 0644 (readable by the other services of a deployment).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class SchemaError(ValueError):
    """A table does not have the columns/types its schema requires."""


class TableLayoutError(ValueError):
    """A table exists both as one file and as a partition folder, or a partition name is unusable."""


def table_path(root: Path, name: str, partition: str | None = None) -> Path:
    """Where table `name` lies under the tables folder `root`.

    With `partition`: that partition's file, `root/name/<partition>.parquet`. Without: the partition
    folder `root/name` if the table is partitioned (the folder exists), else the single file
    `root/name.parquet` (also where a new single table is written). `TableLayoutError` if both exist.
    """
    root = Path(root)
    if partition is not None:
        if not partition or "/" in partition or partition.startswith("."):
            raise TableLayoutError(f"table {name}: partition name {partition!r} must be a plain file name")
        return root / name / f"{partition}.parquet"
    single, folder = root / f"{name}.parquet", root / name
    if folder.is_dir():
        if single.exists():
            raise TableLayoutError(
                f"table {name} exists both as {single} and as the partition folder {folder}; remove one"
            )
        return folder
    return single


def write_table(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> Path:
    """Atomically write `table` to the file `path` (Parquet, 0644); validate against `schema` first."""
    path = Path(path)
    if schema is not None:
        check_schema(table, schema, name=path.stem)
        table = table.select(schema.names).cast(schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def staging_folder(path: Path) -> Path:
    """A new, empty hidden folder beside `path` to fill with part files before `publish_folder`."""
    path = Path(path)
    folder = path.parent / f".{path.name}.staging-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    return folder


def publish_folder(staged: Path, path: Path) -> Path:
    """Move the filled staging folder `staged` to `path`, replacing what was there (file or folder).

    The old entry is first renamed aside, then the new folder renamed in, then the old one
    deleted: each rename is atomic, so a reader or a crash sees the old table or the new one
    whole, never a mix (between the two renames `path` is briefly absent, and after a crash there
    the old version is still beside it as `.<name>.old-…`).
    """
    path = Path(path)
    old: Path | None = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:12]}"
        os.replace(path, old)
    os.replace(staged, path)
    os.chmod(path, 0o755)  # mkdir under a umask may be tighter; readers of other services list it
    if old is not None:
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    return path


def partitions(path: Path) -> list[Path]:
    """The partitions (files or part folders) of the partitioned table at folder `path`, by name.

    Temporary files of writes in progress and staging folders (hidden, `.name.…`) are not partitions.
    """
    return sorted(p for p in Path(path).glob("*.parquet") if not p.name.startswith("."))


def part_files(path: Path) -> list[Path]:
    """The Parquet files holding partition (or single table) `path`: itself, or its part files by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith("."))


def read_table(path: Path, schema: pa.Schema | None = None) -> pa.Table:
    """Read the table at `path` (see `table_path`): one file, or every partition of a folder in name order.

    With `schema`, every part is checked (`SchemaError`). Parts are concatenated with permissive
    promotion, so a partition written from an empty batch (null-typed columns) joins the others.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"table {path} does not exist; materialize its upstream asset first")
    parts = [path] if path.is_file() or path.suffix == ".parquet" else partitions(path)
    if not parts:
        raise FileNotFoundError(f"table {path} has no partitions; materialize its upstream asset first")
    tables = [_read_partition(part) for part in parts]
    if schema is not None:
        for part, table in zip(parts, tables, strict=True):
            check_schema(table, schema, name=f"{path.stem} ({part.name})" if part != path else path.stem)
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _read_partition(path: Path) -> pa.Table:
    files = part_files(path)
    if not files:
        raise FileNotFoundError(f"partition {path} holds no part files; materialize its upstream asset again")
    tables = [pq.read_table(f) for f in files]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


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

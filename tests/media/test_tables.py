"""Parquet tables: one layout for single and partitioned tables, atomic 0644 writes, schema checks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from media.tables import (
    SchemaError,
    TableLayoutError,
    part_files,
    partitions,
    publish_folder,
    read_table,
    staging_folder,
    table_path,
    write_table,
)

SCHEMA = pa.schema([pa.field("clip_id", pa.string()), pa.field("score", pa.float64())])


def _rows(prefix: str, count: int) -> pa.Table:
    return pa.table(
        {"clip_id": [f"{prefix}{i}" for i in range(count)], "score": [float(i) for i in range(count)]}
    )


def test_single_table_round_trip(tmp_path: Path) -> None:
    path = table_path(tmp_path, "tiers")
    assert path == tmp_path / "tiers.parquet"
    write_table(_rows("c", 3), path, SCHEMA)
    assert table_path(tmp_path, "tiers") == path  # found where it was written
    assert read_table(path, SCHEMA).to_pylist() == _rows("c", 3).to_pylist()
    assert path.stat().st_mode & 0o777 == 0o644


def test_partitioned_table_round_trip_in_partition_order(tmp_path: Path) -> None:
    for batch, count in (("batch-b", 2), ("batch-a", 3)):
        write_table(_rows(batch, count), table_path(tmp_path, "clips", batch), SCHEMA)
    assert table_path(tmp_path, "clips", "batch-a") == tmp_path / "clips" / "batch-a.parquet"
    whole = table_path(tmp_path, "clips")
    assert whole == tmp_path / "clips"
    assert [p.name for p in partitions(whole)] == ["batch-a.parquet", "batch-b.parquet"]
    ids = read_table(whole, SCHEMA).column("clip_id").to_pylist()
    assert ids == ["batch-a0", "batch-a1", "batch-a2", "batch-b0", "batch-b1"]
    # Rewriting one partition replaces only its rows.
    write_table(_rows("batch-b", 1), table_path(tmp_path, "clips", "batch-b"), SCHEMA)
    assert read_table(whole).num_rows == 4


def test_an_empty_batch_partition_joins_the_others(tmp_path: Path) -> None:
    write_table(_rows("a", 2), table_path(tmp_path, "clips", "a"), SCHEMA)
    empty = pa.table({"clip_id": pa.array([], pa.null()), "score": pa.array([], pa.null())})
    pq.write_table(empty, table_path(tmp_path, "clips", "b"))  # as a writer without a schema leaves it
    table = read_table(table_path(tmp_path, "clips"), SCHEMA)
    assert table.num_rows == 2 and table.schema.field("score").type == pa.float64()


def test_layout_errors(tmp_path: Path) -> None:
    write_table(_rows("a", 1), table_path(tmp_path, "clips"), SCHEMA)
    write_table(_rows("b", 1), table_path(tmp_path, "clips", "b"), SCHEMA)
    with pytest.raises(TableLayoutError, match="both as .*clips.parquet and as the partition folder"):
        table_path(tmp_path, "clips")
    for bad in ("", "../x", ".hidden"):
        with pytest.raises(TableLayoutError, match="plain file name"):
            table_path(tmp_path, "clips", bad)
    with pytest.raises(FileNotFoundError, match="materialize its upstream asset"):
        read_table(table_path(tmp_path, "missing"))
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(FileNotFoundError, match="no partitions"):
        read_table(tmp_path / "empty_folder")


def test_schema_is_checked_per_partition(tmp_path: Path) -> None:
    write_table(_rows("a", 1), table_path(tmp_path, "t", "a"), SCHEMA)
    pq.write_table(pa.table({"clip_id": ["x"]}), table_path(tmp_path, "t", "b"))
    with pytest.raises(SchemaError, match=r"t \(b.parquet\): missing columns \['score'\]"):
        read_table(table_path(tmp_path, "t"), SCHEMA)
    with pytest.raises(SchemaError, match="score is string, expected double"):
        write_table(pa.table({"clip_id": ["x"], "score": ["high"]}), tmp_path / "bad.parquet", SCHEMA)
    assert not (tmp_path / "bad.parquet").exists()


def test_a_failed_write_leaves_the_previous_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = table_path(tmp_path, "tiers")
    write_table(_rows("old", 2), path, SCHEMA)

    def half_written(table: pa.Table, where: str) -> None:
        Path(where).write_bytes(b"PAR1 half a file")  # the temporary file, never the target
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_table(_rows("new", 5), path, SCHEMA)
    monkeypatch.undo()
    assert read_table(path).column("clip_id").to_pylist() == ["old0", "old1"]
    assert [p.name for p in tmp_path.iterdir()] == ["tiers.parquet"]


def test_hidden_files_in_a_partition_folder_are_not_partitions(tmp_path: Path) -> None:
    """A writer killed between writing and renaming leaves a hidden temporary file behind."""
    write_table(_rows("c", 1), table_path(tmp_path, "t", "a"), SCHEMA)
    (tmp_path / "t" / ".a.parquet.x1y2.tmp").write_bytes(b"junk")
    (tmp_path / "t" / ".b.parquet").write_bytes(b"junk")
    assert [p.name for p in partitions(tmp_path / "t")] == ["a.parquet"]
    assert read_table(table_path(tmp_path, "t")).num_rows == 1


def test_a_part_folder_partition_is_published_whole_and_read_with_the_others(tmp_path: Path) -> None:
    write_table(_rows("a", 2), table_path(tmp_path, "signals", "a"), SCHEMA)
    target = table_path(tmp_path, "signals", "b")
    write_table(_rows("old", 5), target, SCHEMA)  # a single-file partition is replaced by a folder
    staged = staging_folder(target)
    assert staged.name.startswith(".") and staged.parent == target.parent
    pq.write_table(_rows("b", 2), staged / "p1.parquet")
    pq.write_table(_rows("c", 1), staged / "p0.parquet")
    (staged / ".p2.parquet.tmp").write_bytes(b"half a file")  # a writer killed mid-write
    assert read_table(tmp_path / "signals").column("clip_id").to_pylist() == [
        "a0",
        "a1",
        "old0",
        "old1",
        "old2",
        "old3",
        "old4",
    ]
    publish_folder(staged, target)
    assert target.is_dir() and [p.name for p in part_files(target)] == ["p0.parquet", "p1.parquet"]
    assert read_table(tmp_path / "signals", SCHEMA).column("clip_id").to_pylist() == [
        "a0",
        "a1",
        "c0",
        "b0",
        "b1",
    ]
    assert read_table(target).num_rows == 3
    assert sorted(p.name for p in (tmp_path / "signals").iterdir()) == ["a.parquet", "b.parquet"]

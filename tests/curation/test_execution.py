"""Streaming stages in-process: outputs split by kind, retried writes idempotent, quarantine shared."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.config import ExecutionConfig
from curation.execution import PartSink, StageOutput, run_stage, run_task, transport_block, written_by
from media.tables import part_files, read_table

ROWS = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("value", pa.float64())])
NOTES = pa.schema(
    [pa.field("id", pa.string(), nullable=False), pa.field("stage", pa.string(), nullable=False)]
)
KINDS = {"row": ROWS, "note": NOTES}


class Doubler:
    """Test UDF: one `row` per item, and a `note` for negative values."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, items: pa.Table) -> pa.Table:
        out = []
        for item in items.to_pylist():
            out.append(("row", {"id": item["id"], "value": item["value"] * self.factor}))
            if item["value"] < 0:
                out.append(("note", {"id": item["id"], "stage": "double"}))
        return transport_block(KINDS, out)


def _outputs(root: Path) -> dict[str, StageOutput]:
    return {
        "row": StageOutput(root / "rows" / "b.parquet", ROWS),
        "note": StageOutput(root / "notes" / "b.parquet", NOTES, shared=True),
    }


def test_a_stage_writes_each_kind_to_its_partition(tmp_path: Path) -> None:
    items = [{"id": f"i{k}", "value": float(k - 2)} for k in range(5)]
    pq.write_table(pa.table({"id": ["x"], "stage": ["other"]}, schema=NOTES), tmp_path / "other.parquet")
    (tmp_path / "notes" / "b.parquet").mkdir(parents=True)
    (tmp_path / "other.parquet").rename(tmp_path / "notes" / "b.parquet" / "other-1.parquet")
    config = ExecutionConfig(backend="local")
    summary = run_stage("double", items, Doubler, {"factor": 2.0}, _outputs(tmp_path), config)
    assert summary.rows == {"row": 5, "note": 2} and summary.nodes == {"inprocess"}
    rows = read_table(tmp_path / "rows" / "b.parquet", ROWS).sort_by("id")
    assert rows.column("value").to_pylist() == [-4.0, -2.0, 0.0, 2.0, 4.0]
    notes = read_table(tmp_path / "notes" / "b.parquet", NOTES).sort_by("id")
    assert notes.column("id").to_pylist() == ["i0", "i1", "x"]  # the other stage's part carried over
    again = run_stage("double", items[2:], Doubler, {"factor": 2.0}, _outputs(tmp_path), config)
    assert again.rows == {"row": 3, "note": 0}
    assert read_table(tmp_path / "notes" / "b.parquet").column("id").to_pylist() == ["x"]
    assert [p.name for p in part_files(tmp_path / "notes" / "b.parquet")] == [
        "double-empty.parquet",
        "other-1.parquet",
    ]
    assert not list(tmp_path.rglob(".*"))


def test_a_retried_write_replaces_its_part_instead_of_adding_one(tmp_path: Path) -> None:
    folders = {kind: (tmp_path / kind, schema) for kind, schema in KINDS.items()}
    for folder, _ in folders.values():
        folder.mkdir()
    block = Doubler(1.0)(pa.Table.from_pylist([{"id": "a", "value": -1.0}, {"id": "b", "value": 3.0}]))
    sink = PartSink("double", folders)
    first = sink.write([block], None)
    second = sink.write([block], None)  # Ray re-runs a write task whose worker died
    assert first == second == {"rows": {"row": 2, "note": 1}, "node": "inprocess"}
    parts = part_files(tmp_path / "row")
    assert len(parts) == 1 and written_by(parts[0]) == "inprocess"
    assert pq.read_table(parts[0]).num_rows == 2 and pq.ParquetFile(parts[0]).num_row_groups == 1
    assert not list(tmp_path.rglob(".*"))


def _pid_and_sum(values: list[int]) -> tuple[int, int]:
    return os.getpid(), sum(values)


def test_a_whole_batch_task_runs_in_process_on_the_local_backend() -> None:
    assert run_task("sum", _pid_and_sum, ExecutionConfig(backend="local"), [1, 2, 3]) == (os.getpid(), 6)


@pytest.mark.slow  # the session's Ray
def test_a_whole_batch_task_runs_on_a_ray_worker_not_the_driver(ray_session: None) -> None:
    pid, total = run_task("sum", _pid_and_sum, ExecutionConfig(backend="ray", num_cpus=2), [1, 2, 3])
    assert total == 6 and pid != os.getpid()

import pytest

from orchestration.workspace import Workspace, WorkspaceError, atomic_write_text


def test_ensure_creates_the_documented_layout(tmp_path):
    ws = Workspace.at(tmp_path / "home").ensure()
    for name in ["raw", "clips", "tables", "quarantine", "checkpoints", "dagster", "mlartifacts"]:
        assert (ws.home / name).is_dir(), name
    assert ws.mlflow_uri == f"sqlite:///{ws.home / 'mlflow.db'}"
    assert ws.table("clips") == ws.home / "tables" / "clips.parquet"


def test_a_file_in_place_of_the_home_is_a_clear_error(tmp_path):
    blocker = tmp_path / "home"
    blocker.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="not a directory"):
        Workspace.at(blocker).ensure()


def test_uncreatable_home_is_a_clear_error(tmp_path):
    # A folder below a regular file cannot be created, even by root (permissions would not stop root).
    parent = tmp_path / "file"
    parent.write_text("x")
    with pytest.raises(WorkspaceError, match="not writable.*--home"):
        Workspace.at(parent / "home").ensure()


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "note.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["note.txt"]


def test_tables_are_single_files_or_partition_folders(tmp_path):
    ws = Workspace.at(tmp_path / "home").ensure()
    assert ws.table("clips", "batch-1") == ws.home / "tables" / "clips" / "batch-1.parquet"
    ws.table("clips", "batch-1").parent.mkdir()
    assert ws.table("clips") == ws.home / "tables" / "clips"  # the whole partitioned table
    assert ws.table("tiers") == ws.home / "tables" / "tiers.parquet"

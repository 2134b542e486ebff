"""Data versions through real DVC (local remote and an S3 remote served by SeaweedFS on loopback)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from media.tables import read_table, write_table
from orchestration.versioning import DvcVersionStore, LakeFSVersionStore, VersioningError


def _write(path: Path, values: list[int]) -> None:
    write_table(pa.table({"clip_id": [f"c{v}" for v in values], "value": values}), path)


def test_dvc_commit_history_and_checkout_of_an_old_version(tmp_path):
    home = tmp_path / "home"
    table = home / "tables" / "tiers.parquet"
    _write(table, [1, 2, 3])
    store = DvcVersionStore(home, tmp_path / "remote")
    first = store.commit(table, "first tiers")
    again = store.commit(table, "unchanged")
    assert again.version == first.version  # idempotent: no new version for the same content
    _write(table, [1, 2, 3, 4])
    second = store.commit(table, "more clips")
    assert second.version != first.version
    assert [v.version for v in store.history(table)] == [first.version, second.version]
    assert first.ref == f"dvc:tables/tiers.parquet@{first.version}"
    assert any((tmp_path / "remote").rglob("*")), "push wrote nothing to the remote"

    shutil.rmtree(home / ".dvc" / "cache")  # force the checkout to pull from the remote
    store = DvcVersionStore(home, tmp_path / "remote")  # as a later process would
    store.checkout(table, first.version)
    assert read_table(table).column("value").to_pylist() == [1, 2, 3]
    with pytest.raises(VersioningError, match="no version deadbeef"):
        store.checkout(table, "deadbeef")


def test_dvc_versions_a_folder_of_partitions(tmp_path):
    home = tmp_path / "home"
    folder = home / "tables" / "raw_videos"
    _write(folder / "b1.parquet", [1])
    store = DvcVersionStore(home, tmp_path / "remote")
    v1 = store.commit(folder, "batch 1")
    _write(folder / "b2.parquet", [2])
    v2 = store.commit(folder, "batch 2")
    assert v1.version.endswith(".dir") and v2.version.endswith(".dir") and v1.version != v2.version
    with pytest.raises(VersioningError, match="outside the versioned workspace"):
        store.commit(tmp_path / "elsewhere", "x")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def seaweedfs_s3(tmp_path):
    """A real S3 endpoint: SeaweedFS `weed mini` on 127.0.0.1 with one bucket and fixed credentials."""
    weed = Path(sys.executable).parent / "weed"
    port = _free_port()
    creds = {"AWS_ACCESS_KEY_ID": "videofoundry", "AWS_SECRET_ACCESS_KEY": "videofoundry-secret"}
    data = tmp_path / "weed"
    data.mkdir()
    proc = subprocess.Popen(
        [
            str(weed),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            "-bucket=versions",
            "-admin.ui=false",
        ],
        env={**os.environ, **creds},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.5)
    time.sleep(2)  # the bucket is created just after the port opens
    yield {**creds, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    os.killpg(proc.pid, 15)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_dvc_with_an_s3_remote_on_seaweedfs(tmp_path, seaweedfs_s3):
    home = tmp_path / "home"
    table = home / "tables" / "captions.parquet"
    _write(table, [7, 8])
    options = {
        "endpointurl": seaweedfs_s3["AWS_ENDPOINT_URL"],
        "access_key_id": seaweedfs_s3["AWS_ACCESS_KEY_ID"],
        "secret_access_key": seaweedfs_s3["AWS_SECRET_ACCESS_KEY"],
    }
    store = DvcVersionStore(home, "s3://versions/dvc", options)
    version = store.commit(table, "captions v1")
    _write(table, [9])
    store.commit(table, "captions v2")
    shutil.rmtree(home / ".dvc" / "cache")
    store = DvcVersionStore(home, "s3://versions/dvc", options)
    store.checkout(table, version.version)  # only the S3 remote has it now
    assert read_table(table).column("value").to_pylist() == [7, 8]


LAKEFS_ENDPOINT = os.environ.get("LAKEFS_ENDPOINT")


@pytest.mark.skipif(not LAKEFS_ENDPOINT, reason="no lakeFS server: set LAKEFS_ENDPOINT (+ keys, repo)")
def test_lakefs_branch_commit_checkout_merge(tmp_path):
    repo = os.environ.get("LAKEFS_REPOSITORY", "videofoundry")
    branch = f"exp-{uuid.uuid4().hex[:8]}"
    table = tmp_path / "tables" / "tiers.parquet"
    _write(table, [1, 2])
    store = LakeFSVersionStore(
        LAKEFS_ENDPOINT,
        repo,
        branch,
        os.environ.get("LAKEFS_ACCESS_KEY_ID"),
        os.environ.get("LAKEFS_SECRET_ACCESS_KEY"),
        root=tmp_path,
    )
    first = store.commit(table, "v1")
    _write(table, [3])
    store.commit(table, "v2")
    store.checkout(table, first.version)
    assert read_table(table).column("value").to_pylist() == [1, 2]
    assert store.merge(branch)

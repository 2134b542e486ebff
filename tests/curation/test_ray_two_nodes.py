"""`videofoundry curate` on a real two-node Ray cluster started on this machine.

Two `ray start --block` processes (a head and a second raylet, one CPU each, loopback only, a
private temp dir) form the cluster; the CLI joins it through `VIDEOFOUNDRY_COMPUTE__RAY_ADDRESS`.
The part files of the streamed tables name (in their metadata) the Ray node that wrote them, which
shows the work ran on both nodes; the tables equal an in-process run's (row order and the wall-clock `timing_*`
columns aside). Both nodes are stopped by their process groups whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from curation.democorpus.scale_corpus import render_scale_corpus
from curation.execution import written_by
from media.tables import part_files, read_table

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TABLES = ("clips", "clip_signals", "deduped_clips", "tier_decisions", "tiers", "sft_candidates")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _node_ports() -> list[str]:
    """Ports every node needs of its own: two raylets on one host must not share the defaults."""
    return [
        *("--dashboard-agent-listen-port", str(_free_port())),
        *("--dashboard-agent-grpc-port", str(_free_port())),
        *("--runtime-env-agent-port", str(_free_port())),
        *("--metrics-export-port", str(_free_port())),
    ]


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group of a `ray start --block` (raylet, GCS, workers), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nodes(address: str, count: int, env: dict[str, str], timeout_s: float) -> None:
    script = (
        "import ray, sys, time\n"
        f"ray.init(address={address!r}, logging_level='ERROR')\n"
        f"deadline = time.time() + {timeout_s}\n"
        f"while sum(n['Alive'] for n in ray.nodes()) < {count}:\n"
        "    if time.time() > deadline: sys.exit('nodes did not join')\n"
        "    time.sleep(0.5)\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=timeout_s + 30)


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(address, environment for clients) of a head + one worker node; both stopped afterwards."""
    temp_dir = Path(tempfile.mkdtemp(prefix="vfray", dir="/tmp"))  # short: Ray's socket paths
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONPATH": str(REPO),
    }
    env.pop("RAY_ADDRESS", None)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0", "--block"]
    head = [
        str(BIN / "ray"), "start", "--head", "--port", str(port), "--temp-dir", str(temp_dir),
        "--include-dashboard", "false", "--ray-client-server-port", str(_free_port()),
        "--disable-usage-stats", *common, *_node_ports(),
    ]  # fmt: skip
    worker = [str(BIN / "ray"), "start", "--address", address, *common, *_node_ports()]
    processes: list[subprocess.Popen] = []
    try:
        for command in (head, worker):
            log = (tmp_path / f"ray_{len(processes)}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            if command is head:
                _wait_for_port(port, 60.0)
        _wait_for_nodes(address, 2, env, 60.0)
        yield address, env
    finally:
        for process in reversed(processes):
            _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"Ray head did not listen on port {port} within {timeout_s} s")


def _normalised(table: pa.Table) -> pa.Table:
    """Without wall-clock timings, rows sorted by every sortable column."""
    table = table.select([c for c in table.column_names if not c.startswith("timing_")])
    keys = [c for c in table.column_names if not pa.types.is_list(table.schema.field(c).type)]
    return table.sort_by([(c, "ascending") for c in keys])


def _curate(batch_dir: Path, home: Path, env: dict[str, str], *options: str) -> None:
    result = subprocess.run(
        [str(BIN / "videofoundry"), "curate", str(batch_dir), "--home", str(home), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_curate_on_two_nodes_equals_the_local_run(
    two_node_cluster: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    address, env = two_node_cluster
    batch_dir = tmp_path / "raw" / "two_nodes"
    videos = render_scale_corpus(batch_dir, 8)
    (batch_dir / "empty.mp4").write_bytes(b"")  # quarantined at probe
    shutil.copyfile(videos[0], batch_dir / "copy.mp4")  # quarantined at ingest
    local_env = {k: v for k, v in env.items() if not k.startswith("RAY_")}
    local_env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    _curate(batch_dir, tmp_path / "local", local_env, "--backend", "local")
    _curate(batch_dir, tmp_path / "cluster", {**env, "VIDEOFOUNDRY_COMPUTE__RAY_ADDRESS": address})

    for name in TABLES:
        local = read_table(tmp_path / "local" / "tables" / _entry(name))
        cluster = read_table(tmp_path / "cluster" / "tables" / _entry(name))
        assert local.num_rows >= (1 if name in ("clips", "clip_signals", "deduped_clips") else 0), name
        assert _normalised(cluster).equals(_normalised(local)), name
    quarantine = [
        read_table(tmp_path / home / "quarantine" / "two_nodes.parquet") for home in ("local", "cluster")
    ]
    assert _normalised(quarantine[1]).equals(_normalised(quarantine[0]))
    assert sorted(quarantine[1].column("stage").to_pylist()) == ["ingest", "probe"]
    # Each part file names the Ray node that wrote it: the workers of both nodes wrote.
    streamed = [
        tmp_path / "cluster" / "tables" / name / "two_nodes.parquet" for name in ("clips", "clip_signals")
    ]
    nodes = {written_by(part) for path in streamed for part in part_files(path)} - {""}
    assert len(nodes) == 2 and "inprocess" not in nodes, nodes
    local_clips = tmp_path / "local" / "tables" / "clips" / "two_nodes.parquet"
    assert {written_by(part) for part in part_files(local_clips)} == {"inprocess"}


def _entry(name: str) -> str:
    return name if name in ("clips", "clip_signals") else f"{name}.parquet"

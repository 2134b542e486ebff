"""`videofoundry up` serves the Dagster UI and MLflow on 127.0.0.1 and stops cleanly on SIGTERM."""

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from orchestration.config import load_config
from orchestration.definitions import build_definitions
from orchestration.runner import run_lineage

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> bytes:
    headers = {"Content-Type": "application/json"} if data else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def _wait(url: str, data: bytes | None, deadline: float) -> bytes:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return _get(url, data)
        except Exception as error:  # not up yet
            last = error
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in time: {last}")


@pytest.mark.slow
def test_up_shows_materialized_raw_videos_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "home"
    config = load_config(home=home, environ={})
    (home / "raw" / "b1").mkdir(parents=True)
    shutil.copy(VTEST, home / "raw" / "b1" / "v.avi")
    assert run_lineage(build_definitions(config), config, select="key:raw_videos").success

    dagster_port, mlflow_port = _free_port(), _free_port()
    cli = str(Path(sys.executable).parent / "videofoundry")
    proc = subprocess.Popen(
        [
            cli,
            "up",
            "--home",
            str(home),
            "--dagster-port",
            str(dagster_port),
            "--mlflow-port",
            str(mlflow_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 150
        query = json.dumps(
            {
                "query": "{ assetNodes { assetKey { path } partitionStats { numMaterialized } } }",
            }
        ).encode()
        body = json.loads(_wait(f"http://127.0.0.1:{dagster_port}/graphql", query, deadline))
        nodes = {tuple(n["assetKey"]["path"]): n for n in body["data"]["assetNodes"]}
        assert nodes[("raw_videos",)]["partitionStats"]["numMaterialized"] == 1
        assert _wait(f"http://127.0.0.1:{mlflow_port}/health", None, deadline).strip() == b"OK"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            subprocess.run(["pkill", "-KILL", "-g", str(proc.pid)], check=False)
            raise
    assert proc.returncode == 0
    for port in (dagster_port, mlflow_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after stop"

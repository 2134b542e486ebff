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


def _wait(url: str, data: bytes | None, deadline: float, proc: subprocess.Popen, log: Path) -> bytes:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`up` exited with {proc.returncode}:\n{_tail(log)}")
        try:
            return _get(url, data)
        except Exception as error:  # not up yet
            last = error
            time.sleep(1)
    raise AssertionError(f"{url} did not answer in time: {last}\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.slow
def test_up_shows_materialized_raw_videos_and_stops_on_sigterm(tmp_path):
    home = tmp_path / "home"
    config = load_config(home=home, environ={})
    (home / "raw" / "b1").mkdir(parents=True)
    shutil.copy(VTEST, home / "raw" / "b1" / "v.avi")
    assert run_lineage(build_definitions(config), config, select="key:raw_videos").success

    dagster_port, mlflow_port, demo_port, raters_port = (_free_port() for _ in range(4))
    cli = str(Path(sys.executable).parent / "videofoundry")
    # The children log a lot: to a file, never an unread pipe (a full pipe blocks `dagster dev`).
    log = tmp_path / "up.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
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
                "--demo-port",
                str(demo_port),
                "--raters-port",
                str(raters_port),
            ],
            stdout=out,
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
        body = json.loads(_wait(f"http://127.0.0.1:{dagster_port}/graphql", query, deadline, proc, log))
        nodes = {tuple(n["assetKey"]["path"]): n for n in body["data"]["assetNodes"]}
        assert nodes[("raw_videos",)]["partitionStats"]["numMaterialized"] == 1
        assert _wait(f"http://127.0.0.1:{mlflow_port}/health", None, deadline, proc, log).strip() == b"OK"
        assert b"gradio" in _wait(f"http://127.0.0.1:{demo_port}/", None, deadline, proc, log).lower()
        assert b"VideoFoundry raters" in _wait(f"http://127.0.0.1:{raters_port}/", None, deadline, proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            subprocess.run(["pkill", "-KILL", "-g", str(proc.pid)], check=False)
            raise
    assert proc.returncode == 0, _tail(log)
    for port in (dagster_port, mlflow_port, demo_port, raters_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after stop"


def test_a_service_that_dies_stops_the_rest_and_fails_up(tmp_path):
    from orchestration.services import Service, run_services
    from orchestration.workspace import Workspace

    sleeper = Service("sleeper", ["sleep", "60"], "-")
    crasher = Service("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"], "-")
    started = time.monotonic()
    assert run_services([sleeper, crasher], Workspace.at(tmp_path / "home")) == 1
    assert time.monotonic() - started < 30  # the sleeper was stopped, not waited for

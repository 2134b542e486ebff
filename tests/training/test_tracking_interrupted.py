"""MLflow runs a dead process left RUNNING end FAILED: at its exit (SIGTERM too) or on the next start."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from media.processes import process_owner
from training.tracking import INTERRUPTED_TAG, OWNER_TAG, RunTracker, fail_interrupted_runs

_CHILD = """
import signal, sys, time
from training.tracking import RunTracker
if sys.argv[2] == "term":  # what the CLI installs: SIGTERM unwinds like Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
paused = RunTracker(sys.argv[1], "interrupted")
paused.release()  # a paused VAE run: resumable, owned by nobody
tracker = RunTracker(sys.argv[1], "interrupted")
print(tracker.run_id, paused.run_id, flush=True)
time.sleep(120)
"""


def _start(uri: str, mode: str) -> tuple[subprocess.Popen, list[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, uri, mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert child.stdout is not None
    return child, child.stdout.readline().split()


@pytest.mark.slow
def test_killed_and_terminated_runs_end_failed_released_runs_stay_running(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    client.search_experiments()  # creates the store once, before two processes open it

    killed, (killed_run, released_run) = _start(uri, "kill")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert client.get_run(killed_run).info.status == "RUNNING"  # nothing ran at the kill

    terminated, (terminated_run, _) = _start(uri, "term")
    terminated.send_signal(signal.SIGTERM)
    assert terminated.wait(timeout=60) == 143
    run = client.get_run(terminated_run)
    assert run.info.status == "FAILED" and "exited before the run finished" in run.data.tags[INTERRUPTED_TAG]

    live = RunTracker(uri, "interrupted")  # the next start on this host
    run = client.get_run(killed_run)
    assert run.info.status == "FAILED" and f"process {killed.pid} ended" in run.data.tags[INTERRUPTED_TAG]
    assert client.get_run(released_run).info.status == "RUNNING"
    assert client.get_run(live.run_id).info.status == "RUNNING"  # its own process is alive
    live.finish()
    assert client.get_run(live.run_id).info.status == "FINISHED"


def test_a_run_owned_by_another_host_is_left_alone_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a dead pid of this host marks a run interrupted: the same pid elsewhere may be running it."""
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("hosts")
    dead = 2**22 + 12345  # above Linux's pid_max: no such process here
    runs = {
        name: client.create_run(experiment, tags={OWNER_TAG: owner}).info.run_id
        for name, owner in (("here", process_owner(dead)), ("elsewhere", f"gpu-node-7:{dead}"))
    }
    with caplog.at_level(logging.INFO, logger="training.tracking"):
        assert fail_interrupted_runs(client, [experiment]) == [runs["here"]]
    assert client.get_run(runs["elsewhere"]).info.status == "RUNNING"
    assert any(
        runs["elsewhere"] in r.getMessage()
        and f"gpu-node-7:{dead}, not by this host: left alone" in r.getMessage()
        for r in caplog.records
    )

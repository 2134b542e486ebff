"""Dagster runs of a killed command end failed: on the next start (kill -9) or at once (SIGTERM)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from media.processes import process_owner
from orchestration.interrupted import OWNER_TAG, fail_interrupted_runs
from orchestration.runner import dagster_instance
from orchestration.workspace import Workspace

_CHILD = """
import sys, time
from pathlib import Path
import dagster as dg
from orchestration.config import load_config
from orchestration.interrupted import exit_on_sigterm
from orchestration.runner import run_lineage

@dg.asset
def slow_asset() -> None:
    (Path(sys.argv[1]) / "started").write_text("")
    time.sleep(120)

if sys.argv[2] == "term":
    exit_on_sigterm()  # what `videofoundry` installs
run_lineage(dg.Definitions(assets=[slow_asset]), load_config(home=Path(sys.argv[1]), environ={}))
"""


def _interrupt(home: Path, mode: str, signum: int) -> int:
    """Run the child until its asset runs, send `signum`; its exit code."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(home), mode], env={**os.environ, "PYTHONPATH": os.getcwd()}
    )
    deadline = time.monotonic() + 180
    while not (home / "started").exists():
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    child.send_signal(signum)
    code = child.wait(timeout=60)
    (home / "started").unlink()
    return code


@pytest.mark.slow
def test_interrupted_dagster_runs_are_marked_failed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _interrupt(home, "kill", signal.SIGKILL) == -signal.SIGKILL
    instance = dagster_instance(Workspace.at(home))
    (killed,) = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED  # what kill -9 leaves

    # SIGTERM unwinds the step: Dagster records the interrupted run failed, the lineage stops (no hang).
    assert _interrupt(home, "term", signal.SIGTERM) in (0, 128 + signal.SIGTERM)
    terminated = instance.get_runs()[0]  # newest first
    assert terminated.run_id != killed.run_id
    assert terminated.status == dg.DagsterRunStatus.FAILURE
    # The SIGTERM'd command's own start already reported the kill -9'd run failed.
    killed = instance.get_run_by_id(killed.run_id)
    assert killed is not None and killed.status == dg.DagsterRunStatus.FAILURE
    assert fail_interrupted_runs(instance) == []  # nothing left to clean


def test_a_run_owned_by_another_host_is_left_alone_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Only a dead pid of this host marks a run interrupted: the same pid elsewhere may be running it."""
    instance = dagster_instance(Workspace.at(tmp_path / "home"))
    dead = 2**22 + 12345  # above Linux's pid_max: no such process here
    runs = {}
    for name, owner in (("here", process_owner(dead)), ("elsewhere", f"gpu-node-7:{dead}")):
        run = dg.DagsterRun(
            job_name="__ASSET_JOB", status=dg.DagsterRunStatus.STARTED, tags={OWNER_TAG: owner}
        )
        runs[name] = instance.add_run(run).run_id
    with caplog.at_level(logging.INFO, logger="orchestration.interrupted"):
        assert fail_interrupted_runs(instance) == [runs["here"]]
    elsewhere = instance.get_run_by_id(runs["elsewhere"])
    assert elsewhere is not None and elsewhere.status == dg.DagsterRunStatus.STARTED
    assert any(
        runs["elsewhere"] in r.getMessage()
        and f"gpu-node-7:{dead}, not by this host: left alone" in r.getMessage()
        for r in caplog.records
    )

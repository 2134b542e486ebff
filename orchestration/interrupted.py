"""Work a killed command left half-done: Dagster runs still STARTED, and SIGTERM turned into an exit.

Every run `orchestration.runner` launches carries the tag `videofoundry/owner` = `<host>:<pid>`.
A run still STARTED (or STARTING) whose owner process on this host is gone was interrupted (kill
-9, OOM, power): `fail_interrupted_runs` reports it failed, so the UI and the staleness rules stop
treating it as in progress. The runner calls it before it starts, and for its own runs when it
unwinds (an exception, Ctrl-C, or SIGTERM once `exit_on_sigterm` is installed).
MLflow runs get the same treatment in `training.tracking`.
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType

import dagster as dg

from media.processes import owner_gone, owner_pid, process_owner

_log = logging.getLogger(__name__)
OWNER_TAG = "videofoundry/owner"
_UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]


def owner_tag() -> dict[str, str]:
    """The tag that names this process as a run's owner."""
    return {OWNER_TAG: process_owner()}


def fail_interrupted_runs(instance: dg.DagsterInstance, include_own: bool = False) -> list[str]:
    """Report failed the unfinished runs owned by a dead process of this host; their run ids.

    `include_own`: also this process's own unfinished runs (it is unwinding and runs nothing more).
    Runs without the tag (launched by the UI's daemon) and runs of other hosts are left alone (the
    latter logged as such).
    """
    me = os.getpid()
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_UNFINISHED)):
        owner = run.tags.get(OWNER_TAG, "")
        pid = owner_pid(owner)
        if pid is None:
            if owner:  # its pid means nothing on this host
                _log.info("Dagster run %s is owned by %s, not by this host: left alone", run.run_id, owner)
            continue
        own = pid == me
        if (own and include_own) or (not own and owner_gone(owner)):
            reason = "the command running it stopped" if own else f"its process {pid} is gone"
            instance.report_run_failed(run, message=f"interrupted: {reason}")
            failed.append(run.run_id)
    return failed


def _raise_exit(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C does (`finally` blocks and atexit hooks run), exit 128+15."""
    signal.signal(signal.SIGTERM, _raise_exit)

"""A watchdog that stops the local Ray processes a driver started, once the driver is gone.

Ray stops its head processes when the driver exits cleanly, and its GCS and raylet follow a
driver killed with SIGKILL, but the agents the raylet spawned (dashboard agent, runtime-env agent)
are re-parented to init and live on. `start_reaper(pid)` runs this file as a separate process: it
records the driver's Ray descendants (pid + start time, so a reused pid is never hit; other
children of the driver are not its business) every
`POLL_S` seconds while the driver lives, and when it dies, however, terminates those still running
and their children (SIGTERM, then SIGKILL after `GRACE_S`). It imports only psutil.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

POLL_S = 0.5
GRACE_S = 3.0


def start_reaper(driver_pid: int) -> subprocess.Popen:
    """Start the watchdog of `driver_pid` (in its own session, so a Ctrl-C to the driver spares it)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(driver_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _same(pid: int, started: float) -> psutil.Process | None:
    """The process `pid` if it is still the one that started at `started`."""
    try:
        process = psutil.Process(pid)
        return process if process.create_time() == started and process.is_running() else None
    except psutil.Error:
        return None


def _is_ray(process: psutil.Process) -> bool:
    """Whether a process is one of Ray's (GCS, raylet, agents, workers), not another child of the driver."""
    try:
        argv = process.cmdline()
    except psutil.Error:
        return False
    return bool(argv) and (
        argv[0].startswith("ray::")
        or Path(argv[0]).name in ("raylet", "gcs_server")
        or any("/ray/" in arg for arg in argv[:3])
    )


def watch(driver_pid: int) -> list[int]:
    """Track `driver_pid`'s descendants until it exits; stop the survivors; return their pids."""
    me = os.getpid()
    try:
        driver = psutil.Process(driver_pid)
    except psutil.NoSuchProcess:
        return []
    tracked: dict[int, float] = {}
    while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
        try:
            for child in driver.children(recursive=True):
                if child.pid != me and child.pid not in tracked and _is_ray(child):
                    tracked[child.pid] = child.create_time()
        except psutil.Error:
            pass  # the driver or a child exited mid-walk: the loop sees it next time
        time.sleep(POLL_S)
    survivors: dict[int, psutil.Process] = {}
    for pid, started in tracked.items():
        process = _same(pid, started)
        if process is None:
            continue
        survivors[pid] = process
        with contextlib.suppress(psutil.Error):
            survivors.update({c.pid: c for c in process.children(recursive=True) if c.pid != me})
    for process in survivors.values():
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(list(survivors.values()), timeout=GRACE_S)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return sorted(survivors)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))

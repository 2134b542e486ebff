"""A driver killed with SIGKILL leaves no Ray process behind: the reaper stops the survivors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

_DRIVER = """
import os, subprocess, sys, time, psutil
from media.ray_cluster import ensure_ray
ensure_ray(None, 1, temp_dir=sys.argv[1])
bystander = subprocess.Popen(["sleep", "900"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # a child of the driver that is not Ray's
time.sleep(2.0)  # the raylet has spawned its agents by now
me = psutil.Process()
print(bystander.pid, flush=True)
print(" ".join(f"{p.pid}:{p.create_time()}" for p in me.children(recursive=True) if p.pid != bystander.pid), flush=True)
os.kill(os.getpid(), 9)
"""


@pytest.mark.slow
def test_ray_processes_of_a_killed_driver_are_stopped() -> None:
    ray_dir = tempfile.mkdtemp(prefix="vf-ray-")  # short: Ray's socket paths must stay < 108 bytes
    driver = subprocess.run(
        [sys.executable, "-c", _DRIVER, ray_dir],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert driver.returncode == -signal.SIGKILL, driver.stderr[-2000:]
    bystander_line, ray_line = driver.stdout.splitlines()[-2:]
    started = [item.split(":") for item in ray_line.split()]
    assert len(started) >= 3  # GCS, raylet and its agents at least

    def running() -> list[str]:
        alive = []
        for pid, created in started:
            try:
                process = psutil.Process(int(pid))
                if process.create_time() == float(created) and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {' '.join(process.cmdline())[:80]}")
            except psutil.Error:
                pass
        return alive

    deadline = time.monotonic() + 30
    while running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running() == []
    bystander = psutil.Process(int(bystander_line))  # the reaper stops Ray's processes only
    assert bystander.is_running() and bystander.status() != psutil.STATUS_ZOMBIE
    bystander.kill()
    shutil.rmtree(ray_dir, ignore_errors=True)

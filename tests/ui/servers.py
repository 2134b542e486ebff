"""Servers the browser tests start as subprocesses: wait until one answers, stop it."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(proc: subprocess.Popen, url: str, log: Path, timeout_s: float = 120.0) -> None:
    """Return once `url` answers 200; fail the test (with the log's tail) if `proc` exits or
    `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout_s:g} s: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Terminate `proc`, killing it if it has not exited after `timeout_s`."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()

"""Processes named by `<host>:<pid>`: how leftovers of killed processes are told apart from live work.

A record that something is in progress (an MLflow run, a Dagster run, a temporary file) names
its owner; when the owner is a process of this host that is gone, the record is stale.
"""

from __future__ import annotations

import os
import socket


def process_alive(pid: int) -> bool:
    """Whether `pid` is a live process on this machine (one we may not signal counts as live)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_owner(pid: int | None = None) -> str:
    """`<host>:<pid>` of this process (or of `pid` on this host)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def owner_pid(owner: str) -> int | None:
    """The pid of an owner string if it names a process of this host, else None (other host, malformed)."""
    host, _, pid = owner.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def owner_gone(owner: str) -> bool:
    """Whether `owner` names a process of this host that no longer runs."""
    pid = owner_pid(owner)
    return pid is not None and not process_alive(pid)

"""One writer per workspace: commands that write the lineage hold an exclusive lock on `<home>/.lock`.

Two `videofoundry run` or `curate` commands on one workspace would interleave writes to the same
tables, checkpoints and Dagster storage. The second one fails fast naming the holder (or waits up to
`wait_s` seconds for it). The lock is `fcntl.flock` on an open file: the kernel drops it when the
holder exits, however it dies (kill -9 included), so a stale lock cannot outlive its process. The
file is never deleted (deleting a flock'ed file lets two processes lock two different inodes); it
holds the current holder's pid and command, for the message.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from orchestration.workspace import Workspace, WorkspaceError

LOCK_FILE = ".lock"
_POLL_S = 0.2


class WorkspaceBusyError(WorkspaceError):
    """Another process holds the workspace lock; the message names it."""


@contextmanager
def workspace_lock(workspace: Workspace, command: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock of `workspace` inside the block.

    Raises `WorkspaceBusyError` (naming the holder's pid and command) if another process holds it
    after `wait_s` seconds (0: fail at once).
    """
    path = workspace.home / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
                    raise WorkspaceBusyError(
                        f"workspace {workspace.home} is in use by {_holder(fd)}{waited}; wait for it to "
                        "finish, pass --wait SECONDS, or use another --home"
                    ) from None
                time.sleep(_POLL_S)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command}, since {started})\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    """What the lock file says about its holder (it may be mid-write: then 'another process')."""
    text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    return text or "another process"

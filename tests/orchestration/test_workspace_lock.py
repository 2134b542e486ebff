"""The workspace lock: a second writer on one workspace fails fast (or waits), other workspaces run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from media.video import write_video
from orchestration.workspace import Workspace
from orchestration.workspace_lock import LOCK_FILE, WorkspaceBusyError, workspace_lock

VIDEOFOUNDRY = str(Path(sys.executable).with_name("videofoundry"))

_HOLDER = """
import sys, time
from orchestration.workspace import Workspace
from orchestration.workspace_lock import workspace_lock
with workspace_lock(Workspace.at(sys.argv[1]), "test holder"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.getcwd()}


def _wait_until_locked(home: Path, holder: subprocess.Popen, text: str, timeout_s: float = 120) -> None:
    lock = home / LOCK_FILE
    deadline = time.monotonic() + timeout_s
    while not (lock.exists() and text in lock.read_text()):
        assert holder.poll() is None, holder.communicate()
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.1)


def test_second_locker_fails_fast_names_the_holder_and_a_kill_frees_the_lock(tmp_path: Path) -> None:
    busy, other = Workspace.at(tmp_path / "busy"), Workspace.at(tmp_path / "other")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(busy.home)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        _wait_until_locked(busy.home, holder, "test holder")
        tic = time.monotonic()
        with (
            pytest.raises(WorkspaceBusyError, match=rf"in use by pid {holder.pid} \(test holder, since "),
            workspace_lock(busy, "second"),
        ):
            pass
        assert time.monotonic() - tic < 0.5  # fails at once, not after a timeout
        tic = time.monotonic()
        with (
            pytest.raises(WorkspaceBusyError, match="after waiting 0.6 s"),
            workspace_lock(busy, "patient", wait_s=0.6),
        ):
            pass
        assert time.monotonic() - tic >= 0.6
        with workspace_lock(other, "elsewhere"):  # another workspace is not blocked
            assert f"pid {os.getpid()} (elsewhere" in (other.home / LOCK_FILE).read_text()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with workspace_lock(busy, "after the kill", wait_s=2.0):  # the kernel dropped the dead holder's lock
            assert "after the kill" in (busy.home / LOCK_FILE).read_text()
        assert (busy.home / LOCK_FILE).read_text() == ""  # released: no holder named
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _one_video_folder(folder: Path, seed: int) -> Path:
    texture = np.random.default_rng(seed).integers(0, 256, (96, 300, 3), dtype=np.uint8)
    write_video(
        folder / "v.mp4", [np.ascontiguousarray(texture[:, 2 * i : 2 * i + 128]) for i in range(50)], 25
    )
    return folder


@pytest.mark.slow
def test_two_commands_on_one_workspace_the_second_fails_fast_other_workspaces_both_succeed(
    tmp_path: Path,
) -> None:
    """Real `videofoundry` processes: curate holds W; run on W fails at once; curate on W2 succeeds.

    The first is stopped (SIGSTOP) once it holds the lock and continued after the second gave up.
    """
    home, other_home = tmp_path / "W", tmp_path / "W2"
    first = subprocess.Popen(
        [
            VIDEOFOUNDRY,
            "curate",
            "--backend",
            "local",
            "--home",
            str(home),
            str(_one_video_folder(tmp_path / "a", 1)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        _wait_until_locked(home, first, "videofoundry curate")
        # Paused while holding the lock, so the second command surely meets it however slow it starts.
        first.send_signal(signal.SIGSTOP)
        elsewhere = subprocess.Popen(
            [
                VIDEOFOUNDRY,
                *("curate", "--backend", "local", "--home", str(other_home)),
                str(_one_video_folder(tmp_path / "b", 2)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        second = subprocess.run(
            [VIDEOFOUNDRY, "run", "--select", "key:raw_videos", "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
        )
        first.send_signal(signal.SIGCONT)
        assert second.returncode != 0
        assert f"is in use by pid {first.pid} (videofoundry curate" in second.stderr
        assert "Traceback" not in second.stderr
        assert not (home / "tables" / "raw_videos").exists()  # the second wrote nothing
        out, err = first.communicate(timeout=240)
        assert first.returncode == 0, err[-2000:]
        out, err = elsewhere.communicate(timeout=240)
        assert elsewhere.returncode == 0, err[-2000:]
        for workspace in (home, other_home):
            assert (workspace / "tables" / "clips" / f"{'a' if workspace == home else 'b'}.parquet").exists()
    finally:
        for process in (first, locals().get("elsewhere")):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize(
    ("argv", "holder_name"),
    [
        (["train-vae", "--max-steps", "1"], "train-vae"),
        (["train-dit", "--stage", "image_256", "--max-steps", "1"], "train-dit"),
        (["train-lora", "--model", "tiny-random", "--data", ".", "--out", "x.safetensors"], "train-lora"),
        (["up", "--wait", "0.5"], "up"),
    ],
)
def test_training_commands_and_up_take_the_workspace_lock(
    tmp_path: Path, argv: list[str], holder_name: str
) -> None:
    """Real `videofoundry` processes against a held workspace: each fails at once naming the holder,
    before writing anything (`--wait S` waits first)."""
    home = tmp_path / "W"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(home)], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        _wait_until_locked(home, holder, "test holder")
        tic = time.monotonic()
        second = subprocess.run(
            [VIDEOFOUNDRY, *argv, "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
            cwd=tmp_path,
        )
        assert second.returncode == 1, second.stderr[-2000:]
        assert f"error: workspace {home} is in use by pid {holder.pid} (test holder" in second.stderr
        assert "Traceback" not in second.stderr
        if "--wait" in argv:
            assert "after waiting 0.5 s" in second.stderr and time.monotonic() - tic >= 0.5
        written = [p for p in home.rglob("*") if p.is_file() and p.name != LOCK_FILE]
        assert written == []  # the workspace's (empty) folders exist; no file was written
    finally:
        holder.kill()
        holder.wait()

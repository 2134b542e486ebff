"""Atomic checkpoints: round trip, latest pointer, retention, torn writes invisible."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

from training.checkpointing import CheckpointError, CheckpointManager, load_state_dict


def test_round_trip_latest_and_retention(tmp_path: Path) -> None:
    model = nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    for step in (10, 20, 30):
        manager.save(
            step, {"model": model.state_dict()}, {"optimizer": opt.state_dict(), "step": step}, {"run": "x"}
        )
    assert [p.name for p in manager.checkpoints()] == ["step_000000020", "step_000000030"]
    loaded = manager.load()
    assert loaded.step == 30 and loaded.metadata == {"run": "x"}
    assert torch.equal(loaded.tensors["model"]["weight"], model.weight.detach())
    fresh = torch.optim.AdamW(nn.Linear(4, 3).parameters(), lr=1e-3)
    fresh.load_state_dict(loaded.trainer_state["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(load_state_dict(loaded.path, "model")["bias"], model.bias.detach())


def test_tied_weights_and_torn_write(tmp_path: Path) -> None:
    shared = torch.randn(3, 3)
    manager = CheckpointManager(tmp_path)
    manager.save(1, {"model": {"a": shared, "b": shared}}, {})
    # A crash mid-write leaves only a temporary directory: it is not a checkpoint.
    torn = tmp_path / f".tmp-step_000000002-999999@{socket.gethostname()}"
    torn.mkdir()
    (torn / "model.safetensors").write_bytes(b"partial")
    assert manager.latest() == tmp_path / "step_000000001"
    assert torch.equal(manager.load().tensors["model"]["b"], shared)
    manager.save(3, {"model": {"a": shared}}, {})
    assert not torn.exists()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        CheckpointManager(tmp_path / "empty").load()


_KILLED_WRITER = """
import os, socket, sys
from pathlib import Path
root, me = Path(sys.argv[1]), f"{os.getpid()}@{socket.gethostname()}"
(root / f".tmp-step_000000003-{me}").mkdir()
(root / f".tmp-step_000000003-{me}" / "model.safetensors").write_bytes(b"partial")
(root / f".latest.{me}.tmp").write_text("step_000000003")
(root / f".stale-step_000000001-{me}").mkdir()
pid = os.getpid()
os.kill(pid, 9)
"""


def test_startup_removes_temporaries_of_killed_writers_and_keeps_live_ones(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    CheckpointManager(tmp_path).save(1, {"model": {"w": torch.ones(2)}}, {})
    writer = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], check=False)
    assert writer.returncode == -9
    live = tmp_path / f".latest.{os.getpid()}@{socket.gethostname()}.tmp"  # a live writer (this process)
    live.write_text("step_000000001")
    leftovers = {p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p != live}
    assert len(leftovers) == 3

    manager = CheckpointManager(tmp_path)  # a restarted trainer
    assert {p.name for p in tmp_path.iterdir()} == {"step_000000001", "latest", live.name}
    assert manager.load().step == 1
    assert manager.remove_stale_temporaries() == []


def test_temporaries_of_other_hosts_are_left_alone_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The root may be shared storage: a pid from another host (or a name without a host) is not
    checked against this host's processes; only this host's dead writers are cleaned."""
    dead = 2**22 + 12345  # above Linux's pid_max: no such process here
    here = socket.gethostname()
    foreign = [
        tmp_path / f".tmp-step_000000004-{dead}@gpu-node-7.cluster",
        tmp_path / f".latest.{dead}@gpu-node-7.cluster.tmp",
        tmp_path / f".stale-step_000000002-{dead}@gpu-node-7",
        tmp_path / f".tmp-step_000000005-{dead}",  # an older writer's name: no host
    ]
    for path in foreign:
        path.mkdir()
    ours = tmp_path / f".latest.{dead}@{here}.tmp"
    ours.write_text("step_000000004")
    with caplog.at_level(logging.INFO, logger="training.checkpointing"):
        removed = CheckpointManager(tmp_path).remove_stale_temporaries()
    assert removed == [] and not ours.exists()  # removed by the constructor already
    assert all(path.exists() for path in foreign)
    messages = [r.getMessage() for r in caplog.records]
    for path in foreign:
        assert any(str(path) in m and "left alone" in m for m in messages), messages
    assert any("host gpu-node-7.cluster's" in m for m in messages)
    assert not any(str(ours) in m for m in messages)

"""Rank functions for test_fsdp (spawned by training.parallel.launch.spawn_local: importable, module-level)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from training.backends import make_backend
from training.dit.stages import StagePlan, train_stage


def train(rank: int, world: int, plan_path: str, sharding: str, sp: int, out: str) -> None:
    """Train the planned stage on `world` ranks with FSDP `sharding` and SP `sp`; rank 0 writes the result."""
    torch.set_num_threads(1)
    backend = make_backend(None, "fp32", sharding, sp)
    result = train_stage(StagePlan.load(Path(plan_path)), backend, with_samples=False)
    if rank == 0:
        Path(out).write_text(json.dumps(result.to_metrics()))


def drop_latest_then_train(rank: int, world: int, plan_path: str, sharding: str, sp: int, out: str) -> None:
    """Delete the newest checkpoint (rank 0), then resume the stage from the one before on this world."""
    plan = StagePlan.load(Path(plan_path))
    if rank == 0:
        newest = sorted(plan.checkpoint_dir.glob("step_*"))[-1]
        shutil.rmtree(newest)
        (plan.checkpoint_dir / "latest").unlink()
    train(rank, world, plan_path, sharding, sp, out)


@dataclass(frozen=True)
class KillRankOnce:
    """A StageJob step hook: rank `rank` SIGKILLs its own process after step `step`, the first time only."""

    marker: str
    rank: int = 1
    step: int = 4

    def __call__(self, step: int) -> None:
        if step == self.step and dist.get_rank() == self.rank and not Path(self.marker).exists():
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)

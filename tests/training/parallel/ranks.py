"""Running a test's worker on local gloo ranks and collecting what each rank returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from training.parallel.launch import spawn_local

Worker = Callable[[int, int], dict[str, Any]]


def run_ranks(worker: Worker, world: int, out: Path, timeout_s: float) -> list[dict[str, Any]]:
    """`worker(rank, world)` on `world` local ranks (`spawn_local`, gloo); the dict each rank
    returned, in rank order. The dicts travel as `out`/rank{r}.pt; `worker` must be module-level."""
    spawn_local(_save_result, world, args=(worker, str(out)), timeout_s=timeout_s)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(world)]


def _save_result(rank: int, world: int, worker: Worker, out_dir: str) -> None:
    torch.save(worker(rank, world), Path(out_dir) / f"rank{rank}.pt")

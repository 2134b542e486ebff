"""Running per-video work on Ray Data (a local loopback Ray or a `ray://` cluster) or in-process.

A task takes one item (a dict of plain values describing one video) and returns a list of output
rows, each `{"kind": <table name>, "payload": <JSON of one row>}`: one flat schema that Ray Data
can move between workers whatever the table, and that the driver splits back into tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from curation.config import ExecutionConfig

Task = Callable[[dict[str, Any]], list[dict[str, str]]]


def output(kind: str, row: dict[str, Any]) -> dict[str, str]:
    """One output row of a task."""
    return {"kind": kind, "payload": json.dumps(row)}


def _limit_threads() -> None:
    """One BLAS/OpenCV/torch thread per task: Ray runs one task per CPU already."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _run_one(item: dict[str, Any], task: Task) -> list[dict[str, str]]:
    _limit_threads()
    return task(item)


def run_tasks(
    task: Task, items: list[dict[str, Any]], config: ExecutionConfig
) -> dict[str, list[dict[str, Any]]]:
    """Apply `task` to every item; return the output rows grouped by kind.

    With `backend="ray"` each item is one Ray Data block mapped by `flat_map` with
    `cpus_per_task` CPUs (and `gpus_per_task` GPUs) per task; Ray is started (or joined) through
    `media.ray_cluster.ensure_ray`, loopback-only and without dashboard when local.
    """
    outputs: list[dict[str, str]] = []
    if not items:
        return {}
    if config.backend == "local":
        for item in items:
            outputs += _run_one(item, task)
    else:
        import ray

        from media.ray_cluster import ensure_ray

        ensure_ray(config.ray_address, config.num_cpus)
        # Ray Data logs a progress block every 10 s by default; our own tqdm/tables say enough.
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.enable_operator_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        resources: dict[str, Any] = {"num_cpus": config.cpus_per_task}
        if config.gpus_per_task:
            resources["num_gpus"] = config.gpus_per_task
        mapped = dataset.flat_map(_run_one, fn_kwargs={"task": task}, **resources)  # type: ignore[arg-type]
        outputs = [{"kind": row["kind"], "payload": row["payload"]} for row in mapped.take_all()]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in outputs:
        grouped.setdefault(row["kind"], []).append(json.loads(row["payload"]))
    return grouped

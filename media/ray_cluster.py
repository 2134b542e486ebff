"""Starting or joining Ray: the one place that calls `ray.init`.

Two ways only: start a new local instance (the embedded default: bound to 127.0.0.1, no
dashboard), or join a cluster named by its address (`host:port`, `ray://head:10001`). Nothing is
discovered: a `RAY_ADDRESS` variable or a `/tmp/ray` session left by another process never
diverts a local start. Curation (Ray Data) and training (Ray Train) both use it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import ray

from media.ray_reaper import start_reaper


class RayAddressError(ValueError):
    """An address that asks Ray to discover a cluster instead of naming one."""


def ensure_ray(address: str | None = None, num_cpus: int | None = None, temp_dir: Path | None = None) -> None:
    """Initialise Ray once per process: a new local instance (`address=None`) or the cluster at `address`.

    A local start passes `address="local"`: plain `ray.init()` would join whatever cluster a stale
    `/tmp/ray/ray_current_cluster` or `RAY_ADDRESS` names, so another process on the machine could
    break (or receive) our work. `temp_dir` (local starts only) holds the instance's sessions and
    sockets instead of `/tmp/ray`, which keeps it apart from other instances on the machine. Calling
    again with Ray already up is a no-op (the first caller's settings win). A local start also
    starts `media.ray_reaper`, which stops the instance's processes once this process is gone,
    even after a kill -9.
    """
    if address in ("auto", "local"):
        raise RayAddressError(
            f"Ray address {address!r}: pass None for a local instance or the cluster's host:port / ray:// address"
        )
    if ray.is_initialized():
        return
    # Keeps Ray's sockets on 127.0.0.1 for a local instance (see README, "Ray").
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=str(temp_dir) if temp_dir is not None else None,
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=True,
    )
    # Agents the raylet spawned outlive a driver killed with SIGKILL: a watchdog stops them.
    start_reaper(os.getpid())


def shutdown_ray() -> None:
    """Stop a Ray this process started (safe when none is running)."""
    if ray.is_initialized():
        ray.shutdown()

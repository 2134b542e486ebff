"""Starting or joining Ray: the one place that calls `ray.init`.

The embedded default is a local Ray bound to 127.0.0.1 with no dashboard; at scale the same call
joins a cluster through `ray://head:10001`. Curation (Ray Data) and training (Ray Train) both use it.
"""

from __future__ import annotations

import logging
import os

import ray


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Initialise Ray once per process. `address=None` starts a new local loopback-only instance.

    A local start passes `address="local"`: plain `ray.init()` would join whatever cluster a stale
    `/tmp/ray/ray_current_cluster` or `RAY_ADDRESS` names, so another process on the machine could
    break (or receive) our work. A cluster is joined only when `address` says so (`host:port`,
    `ray://head:10001`). Calling again with Ray already up is a no-op (the first caller's settings win).
    """
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
        logging_level=logging.WARNING,
        log_to_driver=False,
        configure_logging=True,
    )


def shutdown_ray() -> None:
    """Stop a Ray this process started (safe when none is running)."""
    if ray.is_initialized():
        ray.shutdown()

"""`videofoundry up`: the long-running services of one machine, started and stopped together.

Dagster (webserver + daemon via `dagster dev`), the MLflow UI, and the Gradio apps when their
modules exist. All bind to 127.0.0.1. Ctrl-C or SIGTERM stops every child process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestration.runner import dagster_instance
from orchestration.workspace import Workspace


@dataclass(frozen=True)
class Service:
    """A named child process: its command line and the URL it serves."""

    name: str
    argv: list[str]
    url: str


def _reset_signals() -> None:
    # `dagster dev` inherits ignored SIGTERM/SIGINT from some launchers; restore the defaults so
    # the process group dies when we signal it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def platform_services(
    workspace: Workspace,
    dagster_port: int = 3000,
    mlflow_port: int = 5000,
    demo_port: int = 7860,
    raters_port: int = 7861,
) -> list[Service]:
    """The services `up` starts, in start order."""
    bin_dir = Path(sys.executable).parent
    services = [
        Service(
            "dagster",
            [
                str(bin_dir / "dagster"),
                "dev",
                "-m",
                "orchestration.definitions",
                "--host",
                "127.0.0.1",
                "--port",
                str(dagster_port),
            ],
            f"http://127.0.0.1:{dagster_port}",
        ),
        Service(
            "mlflow",
            [
                str(bin_dir / "mlflow"),
                "ui",
                "--backend-store-uri",
                workspace.mlflow_uri,
                "--default-artifact-root",
                workspace.mlflow_artifacts.as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
            ],
            f"http://127.0.0.1:{mlflow_port}",
        ),
    ]
    cli = str(bin_dir / "videofoundry")
    for app, port in (("demo", demo_port), ("raters", raters_port)):
        if _serve_command_exists(app):
            services.append(
                Service(app, [cli, "serve", app, "--port", str(port)], f"http://127.0.0.1:{port}")
            )
    return services


def _serve_command_exists(app_name: str) -> bool:
    from orchestration.cli_app import serve_app

    return any(
        (c.name or (c.callback.__name__ if c.callback else "")) == app_name
        for c in serve_app.registered_commands
    )


def run_services(services: Sequence[Service], workspace: Workspace, lock_wait_s: float = 0.0) -> int:
    """Start `services`, wait until one exits or we are signalled, then stop them all.

    The workspace writes before the start (Dagster's instance file, MLflow's schema) hold the
    workspace lock, waiting up to `lock_wait_s` for another writer (`WorkspaceBusyError` after).
    Returns 0 after a signal, 1 when a service exited on its own (its output names the cause)."""
    from orchestration.workspace_lock import workspace_lock

    with workspace_lock(workspace, "videofoundry up", lock_wait_s):
        dagster_instance(workspace)  # writes dagster.yaml and sets DAGSTER_HOME for the children
        _create_tracking_store(workspace.mlflow_uri)
    env = dict(os.environ, DAGSTER_HOME=str(workspace.dagster_home), VIDEOFOUNDRY_HOME=str(workspace.home))
    children: list[tuple[Service, subprocess.Popen]] = []
    stop = False
    failed = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for service in services:
            proc = subprocess.Popen(service.argv, env=env, start_new_session=True, preexec_fn=_reset_signals)
            children.append((service, proc))
            print(f"  {service.name:<8} {service.url}  (pid {proc.pid})", flush=True)
        while not stop:
            for service, proc in children:
                if not stop and proc.poll() is not None:
                    print(f"{service.name} exited with code {proc.returncode}; stopping the rest", flush=True)
                    stop = failed = True
            time.sleep(0.5)
    finally:
        for _, proc in children:
            _stop_group(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0


def _create_tracking_store(tracking_uri: str) -> None:
    """Create (or migrate) the MLflow database before the children start.

    The MLflow UI and the Gradio apps each open the store on start; on a fresh SQLite file they would
    run the same schema migrations at once, and the loser dies ("expected to match one row").
    """
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=tracking_uri)


def _stop_group(proc: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass

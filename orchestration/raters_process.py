"""The rater app in a child process (`videofoundry serve raters --fd N`), for tests and load benchmarks."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evaluation.human_eval.config import RaterAppConfig
from ui.raters import listen_local


def spawn_raters_server(
    db_url: str, config: RaterAppConfig | None = None, timeout_s: float = 60.0, home: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `videofoundry serve raters` on a free 127.0.0.1 port; return (process, URL).

    The socket is bound here and inherited by the child, so there is no race for the port. `home`
    is the child's workspace (default: a temporary folder removed at exit). The caller stops the
    process (`terminate()`). Raises RuntimeError if it does not answer in time.
    """
    import httpx

    if home is None:
        home = Path(tempfile.mkdtemp(prefix="videofoundry-raters-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    sock = listen_local(0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
    }
    argv = [sys.executable, "-m", "orchestration.cli", "-q", "serve", "raters", "--db", db_url,
            "--fd", str(sock.fileno()), "--home", str(home)]  # fmt: skip
    if config is not None:
        argv += ["--app-config", config.model_dump_json()]
    proc = subprocess.Popen(argv, pass_fds=[sock.fileno()], env=env)
    sock.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rater server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"rater server did not answer within {timeout_s:.0f} s")

"""A private PostgreSQL server in a temporary folder on 127.0.0.1: the human-eval store's Postgres
backend for tests, benchmarks and one-machine trials.

    with LocalPostgres() as server:
        url = server.create_database("ratings")  # postgresql+psycopg://videofoundry@127.0.0.1:PORT/ratings
        ...

It runs the server binaries of Debian's `postgresql` package (`initdb`, `pg_ctl`: on PATH, else the
newest /usr/lib/postgresql/<version>/bin). PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` account that the package creates (the folder is handed to it);
otherwise as the calling user. The folder comes from `tempfile.mkdtemp` (under /tmp, which every
account can traverse) and is deleted by `stop`. Trust authentication, TCP on 127.0.0.1 only, no
Unix socket: any local user can connect, so keep it to throwaway data. Server settings are
PostgreSQL's defaults (fsync and synchronous commit on), so timings are honest.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

SUPERUSER = "videofoundry"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class LocalPostgresError(RuntimeError):
    """The PostgreSQL binaries are missing, or the server could not be set up or started."""


def postgres_bindir() -> Path:
    """The folder holding `initdb` and `pg_ctl`; `LocalPostgresError` naming the package if none."""
    on_path = shutil.which("initdb")
    if on_path:  # Debian links /usr/local/bin or /usr/bin entries to the versioned folder
        folder = Path(on_path).resolve().parent
        if (folder / "pg_ctl").is_file():
            return folder
    versions = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    )
    if not versions:
        raise LocalPostgresError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` "
            "package (`make setup` does, as root)"
        )
    return versions[-1]


class LocalPostgres:
    """One server: `start()` (initdb + pg_ctl start on a free port), `create_database`, `stop()`."""

    def __init__(self, max_connections: int = 200) -> None:
        self.max_connections = max_connections
        self.port: int | None = None
        self.root: Path | None = None
        self._bindir = postgres_bindir()
        self._account = _server_account()

    @property
    def running(self) -> bool:
        return self.port is not None

    def start(self, attempts: int = 3) -> LocalPostgres:
        """Create the cluster and start the server; retries on another port if one was taken."""
        if self.running:
            return self
        self.root = Path(tempfile.mkdtemp(prefix="vf-postgres-"))
        if self._account is not None:
            os.chown(self.root, self._account.pw_uid, self._account.pw_gid)
        data = self.root / "data"
        self._run(
            [
                "initdb",
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        error = ""
        for _ in range(attempts):
            port = _free_port()
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                f"-c max_connections={self.max_connections}"
            )
            log = self.root / "server.log"
            try:
                self._run(
                    ["pg_ctl", "start", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options]
                )
            except LocalPostgresError as failure:
                error = f"{failure}\n{log.read_text(errors='replace')[-2000:] if log.is_file() else ''}"
                continue
            self.port = port
            return self
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None
        raise LocalPostgresError(f"PostgreSQL did not start after {attempts} attempts: {error}")

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) of `database` on this server."""
        if self.port is None:
            raise LocalPostgresError("the local PostgreSQL server is not running: call start() first")
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL. `name`: lowercase letters, digits, `_`."""
        from sqlalchemy import create_engine, text

        if not _NAME.fullmatch(name):
            raise ValueError(f"database name {name!r}: use lowercase letters, digits and _ (≤ 63)")
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are closed) and delete its folder."""
        if self.root is None:
            return
        try:
            if self.port is not None:
                self._run(["pg_ctl", "stop", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "60"])
        finally:
            self.port = None
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, argv: Sequence[str]) -> None:
        command = [str(self._bindir / argv[0]), *argv[1:]]
        as_account: dict[str, Any] = {}
        if self._account is not None:
            as_account = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        if self._account is not None:
            env["HOME"] = self._account.pw_dir
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                timeout=120,
                env=env,
                cwd="/",
                **as_account,
            )
        except subprocess.CalledProcessError as failure:
            raise LocalPostgresError(
                f"{argv[0]} exited with {failure.returncode}: {(failure.stderr or failure.stdout).strip()[-1000:]}"
            ) from None
        except subprocess.TimeoutExpired:
            raise LocalPostgresError(f"{argv[0]} did not finish within 120 s") from None


def _server_account() -> pwd.struct_passwd | None:
    """The account to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise LocalPostgresError(
            "running as root, and PostgreSQL refuses root: the `postgres` account of Debian's "
            "`postgresql` package is missing (install the package, or run as another user)"
        ) from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

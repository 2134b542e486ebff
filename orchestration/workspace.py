"""The workspace: one folder (`VIDEOFOUNDRY_HOME`) that holds everything a run makes.

Layout (DESIGN.md): raw/ (input videos, one sub-folder per ingest batch), clips/, tables/ (Parquet:
`name.parquet`, or `name/<batch>.parquet` for tables partitioned per ingest batch), quarantine/,
checkpoints/, mlflow.db + mlartifacts/, dagster/ (DAGSTER_HOME), human_eval.db, dvc-remote/.
Deleting the folder resets the platform.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from media.tables import table_path


class WorkspaceError(OSError):
    """The workspace folder cannot be created or written; the message says how to fix it."""


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace folder. `ensure()` creates them and proves they are writable."""

    home: Path

    @classmethod
    def at(cls, home: Path | str) -> Workspace:
        return cls(Path(home).expanduser().resolve())

    @property
    def raw(self) -> Path:
        return self.home / "raw"

    @property
    def clips(self) -> Path:
        return self.home / "clips"

    @property
    def tables(self) -> Path:
        return self.home / "tables"

    @property
    def quarantine(self) -> Path:
        return self.home / "quarantine"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def latents(self) -> Path:
        return self.home / "latents"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def human_eval_db(self) -> Path:
        return self.home / "human_eval.db"

    @property
    def serving_cache(self) -> Path:
        """Model downloads of `serving` (registry artifacts)."""
        return self.home / "cache" / "serving"

    @property
    def dvc_remote(self) -> Path:
        return self.home / "dvc-remote"

    def table(self, name: str, partition: str | None = None) -> Path:
        """Path of the Parquet table `name`, or of one partition of it (layout: `media.tables.table_path`)."""
        return table_path(self.tables, name, partition)

    def ensure(self) -> Workspace:
        """Create the layout; raise `WorkspaceError` if the home is not a writable directory."""
        if self.home.exists() and not self.home.is_dir():
            raise WorkspaceError(
                f"workspace {self.home} exists and is not a directory; "
                "set VIDEOFOUNDRY_HOME or --home to a folder"
            )
        folders = [
            self.raw,
            self.clips,
            self.tables,
            self.quarantine,
            self.checkpoints,
            self.latents,
            self.reports,
            self.dagster_home,
            self.mlflow_artifacts,
        ]
        try:
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.home, prefix=".write-probe-"):
                pass
        except OSError as error:
            raise WorkspaceError(
                f"workspace {self.home} is not writable ({error.strerror or error}); "
                "choose another folder with --home or VIDEOFOUNDRY_HOME, or fix its permissions"
            ) from error
        return self


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

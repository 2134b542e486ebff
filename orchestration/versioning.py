"""Data versions: every materialized table or shard set is committed to a version store.

Two backends behind one interface, chosen by configuration (`versioning.backend`):

- `DvcVersionStore` (embedded default): a DVC repository without git (`dvc init --no-scm`) at the
  workspace root, with a local remote (`<home>/dvc-remote`) or an S3 remote (any S3 endpoint, e.g.
  SeaweedFS or MinIO). A version is DVC's content hash (md5, `.dir` for folders); every committed
  version's `.dvc` file is kept under `.dvc-versions/`, so any version can be checked out again.
- `LakeFSVersionStore` (at scale): a lakeFS repository, a branch per experiment, a commit per
  materialization, merged into `main` on promotion. No lakeFS server can be installed offline, so its
  test runs only where `LAKEFS_ENDPOINT` is set.

A training run records the `DataVersion.ref` of what it read.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import yaml

from orchestration.workspace import atomic_write_text


class VersioningError(RuntimeError):
    """A version store operation failed; the message names the path/version and the cause."""


@dataclass(frozen=True)
class DataVersion:
    """One committed version of a table or folder."""

    name: str  # path relative to the store root, e.g. "tables/tiers.parquet"
    version: str  # content hash (DVC md5) or lakeFS commit id
    backend: str
    message: str
    created_at: float

    @property
    def ref(self) -> str:
        """A string that names this version everywhere (MLflow tags, Dagster metadata)."""
        return f"{self.backend}:{self.name}@{self.version}"


class VersionStore(Protocol):
    """What the assets and trainers need of a data version store."""

    def commit(self, path: Path, message: str) -> DataVersion: ...

    def checkout(self, path: Path, version: str) -> None: ...

    def history(self, path: Path) -> list[DataVersion]: ...


class DvcVersionStore:
    """DVC on the workspace folder; `remote` is a local folder or an `s3://bucket/prefix` URL."""

    def __init__(self, root: Path, remote: str | Path, remote_options: dict[str, str] | None = None):
        self.root = Path(root).resolve()
        self.remote = str(remote)
        self.remote_options = dict(remote_options or {})
        self._repo = None

    # -- repository --------------------------------------------------------------------------
    def _open(self):
        from dvc.repo import Repo

        if self._repo is not None:
            return self._repo
        if not (self.root / ".dvc").is_dir():
            Repo.init(str(self.root), no_scm=True)
        repo = Repo(str(self.root))
        with repo.config.edit() as config:
            config["core"]["remote"] = "storage"
            config["core"]["autostage"] = False
            config.setdefault("remote", {})["storage"] = {"url": self.remote, **self.remote_options}
        self._repo = Repo(str(self.root))
        return self._repo

    def _relative(self, path: Path) -> str:
        path = Path(path).resolve()
        try:
            return str(path.relative_to(self.root))
        except ValueError as error:
            raise VersioningError(f"{path} is outside the versioned workspace {self.root}") from error

    def _log_file(self, name: str) -> Path:
        return self.root / ".dvc-versions" / name / "log.jsonl"

    # -- interface ---------------------------------------------------------------------------
    def commit(self, path: Path, message: str) -> DataVersion:
        """`dvc add` + `dvc push` of `path`; returns its content-hash version (idempotent)."""
        name = self._relative(path)
        if not Path(path).exists():
            raise VersioningError(f"cannot version {name}: it does not exist")
        repo = self._open()
        try:
            repo.add(str(self.root / name))
            repo.push(targets=[str(self.root / f"{name}.dvc")])
        except Exception as error:  # DVC raises many error types; keep the cause
            raise VersioningError(f"dvc could not commit {name}: {error}") from error
        dvc_file = self.root / f"{name}.dvc"
        version = yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"]
        snapshot = self.root / ".dvc-versions" / name / f"{version}.dvc"
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dvc_file, snapshot)
        history = self.history(path)
        if history and history[-1].version == version:
            return history[-1]
        entry = DataVersion(name, version, "dvc", message, time.time())
        log = self._log_file(name)
        previous = log.read_text() if log.exists() else ""
        atomic_write_text(log, previous + json.dumps(asdict(entry)) + "\n")
        return entry

    def checkout(self, path: Path, version: str) -> None:
        """Restore `path` to `version` (pulling from the remote when the cache lacks it)."""
        name = self._relative(path)
        snapshot = self.root / ".dvc-versions" / name / f"{version}.dvc"
        if not snapshot.exists():
            known = [v.version for v in self.history(path)]
            raise VersioningError(f"{name} has no version {version}; known versions: {known}")
        shutil.copyfile(snapshot, self.root / f"{name}.dvc")
        repo = self._open()
        try:
            repo.pull(targets=[str(self.root / f"{name}.dvc")], force=True)
        except Exception as error:  # DVC raises many error types; keep the cause
            raise VersioningError(f"dvc could not check out {name}@{version}: {error}") from error

    def history(self, path: Path) -> list[DataVersion]:
        """Committed versions of `path`, oldest first."""
        log = self._log_file(self._relative(path))
        if not log.exists():
            return []
        return [DataVersion(**json.loads(line)) for line in log.read_text().splitlines() if line]


class LakeFSVersionStore:
    """lakeFS through its Python SDK: objects under `path` uploaded to `branch`, then committed."""

    def __init__(
        self,
        endpoint: str,
        repository: str,
        branch: str = "main",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        root: Path | None = None,
    ):
        import lakefs
        from lakefs.client import Client

        self.root = Path(root or ".").resolve()
        self.client = Client(host=endpoint, username=access_key_id, password=secret_access_key)
        self.repository = lakefs.Repository(repository, client=self.client)
        self.branch_name = branch

    def branch(self, name: str, source: str = "main"):
        """The experiment branch `name`, created from `source` when missing."""
        return self.repository.branch(name).create(source_reference=source, exist_ok=True)

    def commit(self, path: Path, message: str) -> DataVersion:
        name = str(Path(path).resolve().relative_to(self.root))
        branch = self.branch(self.branch_name)
        files = (
            [Path(path)] if Path(path).is_file() else sorted(p for p in Path(path).rglob("*") if p.is_file())
        )
        for file in files:
            key = str(file.resolve().relative_to(self.root))
            branch.object(key).upload(data=file.read_bytes(), mode="wb")
        ref = branch.commit(message=message, metadata={"path": name})
        return DataVersion(name, ref.get_commit().id, "lakefs", message, time.time())

    def checkout(self, path: Path, version: str) -> None:
        name = str(Path(path).resolve().relative_to(self.root))
        commit = self.repository.commit(version)
        for obj in commit.objects(prefix=name):
            target = self.root / obj.path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = commit.object(obj.path).reader(mode="rb").read()
            target.write_bytes(data if isinstance(data, bytes) else data.encode())

    def history(self, path: Path) -> list[DataVersion]:
        name = str(Path(path).resolve().relative_to(self.root))
        branch = self.repository.branch(self.branch_name)
        return [
            DataVersion(name, c.id, "lakefs", c.message, float(c.creation_date))
            for c in branch.log()
            if (c.metadata or {}).get("path") == name
        ][::-1]

    def merge(self, source_branch: str, destination: str = "main") -> str:
        """Merge an experiment branch into `destination` (on promotion); returns the merge ref."""
        return self.repository.branch(source_branch).merge_into(self.repository.branch(destination))

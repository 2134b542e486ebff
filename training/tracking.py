"""MLflow run logging for trainers: where a run logs (`TrackingSettings`) and the run (`RunTracker`).

`TrackingSettings` is the one description both trainers take: tracking URI, artifact location,
experiment, data version and the DiT's lineage (registered model, parent run / version).
One `RunTracker` wraps one MLflow run through `MlflowClient` (no global "active run" state, so two
trackers in one process do not collide): params, metrics, image grids, short mp4s, checkpoint
artifacts. The embedded default URI is `sqlite:///<home>/mlflow.db` with artifacts under
`<home>/mlartifacts`; at scale an MLflow server. A resumed training run passes the stored `run_id`
and keeps logging into the same run, so metric curves continue. On non-zero ranks, or with
`uri=None`, the tracker is disabled: every call is a no-op. A run left RUNNING by a process that
died is marked FAILED (see `fail_interrupted_runs`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from media.processes import owner_gone, owner_pid, process_owner


@dataclass(frozen=True)
class TrackingSettings:
    """Where a training run logs. `uri=None` disables MLflow and the registry (tests of a loop alone).

    Attributes:
        uri: MLflow tracking (and registry) URI.
        artifact_location: artifact root of a newly created experiment: a folder or a URI (s3://…).
        experiment: MLflow experiment name.
        run_name: the run's display name (None: the trainer's default, e.g. `dit_<stage>`).
        data_version: the data version the run reads, recorded as a tag (and on registry versions).
        log_checkpoints: log each checkpoint directory as a run artifact (the VAE; the DiT always
            logs what it registers).
        registered_model: registry model name of DiT checkpoints (None: `videofoundry-dit`).
        parent_run_id: the previous DiT stage's run, set as `mlflow.parentRunId`.
        parent_version: the registry version the DiT stage starts from.
    """

    uri: str | None = None
    artifact_location: str | Path | None = None
    experiment: str = "videofoundry"
    run_name: str | None = None
    data_version: str = "unversioned"
    log_checkpoints: bool = True
    registered_model: str | None = None
    parent_run_id: str | None = None
    parent_version: str | None = None


def _artifact_uri(location: str | Path) -> str:
    text = str(location)
    return text if "://" in text else Path(text).resolve().as_uri()


class RunTracker:
    """Logs to one MLflow run (see module docstring)."""

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        run_name: str | None = None,
        artifact_location: str | Path | None = None,
        run_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.enabled = tracking_uri is not None
        self.run_id: str | None = None
        if not self.enabled:
            return
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            location = _artifact_uri(artifact_location) if artifact_location is not None else None
            experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        fail_interrupted_runs(self.client, [experiment_id])
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
        else:
            self.run_id = self.client.create_run(
                experiment_id, run_name=run_name, tags=tags or {}
            ).info.run_id
        self.client.set_tag(self.run_id, OWNER_TAG, process_owner())
        _OPEN_TRACKERS.add(self)

    @classmethod
    def disabled(cls) -> RunTracker:
        return cls(None, "")

    @classmethod
    def for_run(
        cls,
        settings: TrackingSettings,
        *,
        is_main: bool,
        run_name: str,
        run_id: str | None,
        tags: dict[str, str],
    ) -> RunTracker:
        """The tracker of one training run: disabled off rank 0 or without a URI, else the MLflow
        run `run_id` (resumed) or a new one named `settings.run_name or run_name`."""
        if not is_main or settings.uri is None:
            return cls.disabled()
        return cls(
            settings.uri,
            settings.experiment,
            run_name=settings.run_name or run_name,
            artifact_location=settings.artifact_location,
            run_id=run_id,
            tags=tags,
        )

    def log_params(self, params: dict[str, Any]) -> None:
        if self.enabled and self.run_id:
            for key, value in params.items():
                self.client.log_param(self.run_id, key, str(value)[:6000])

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled and self.run_id:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if self.enabled and self.run_id:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if np.isfinite(v)]
            self.client.log_batch(self.run_id, metrics=batch)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and self.run_id:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dir(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and self.run_id:
            self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def log_image(self, image: np.ndarray, name: str, artifact_path: str = "samples") -> None:
        """(H, W, 3) uint8 RGB → PNG artifact `<artifact_path>/<name>.png`."""
        if not (self.enabled and self.run_id):
            return
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.png"
            Image.fromarray(image).save(path)
            self.log_file(path, artifact_path)

    def log_video(self, frames: np.ndarray, name: str, fps: int = 8, artifact_path: str = "samples") -> None:
        """(T, H, W, 3) uint8 RGB → H.264 mp4 artifact `<artifact_path>/<name>.mp4` (even sizes padded)."""
        if not (self.enabled and self.run_id):
            return
        from media.video import write_video

        pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.mp4"
            write_video(path, frames, fps)
            self.log_file(path, artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        """Mark the run FINISHED / FAILED / KILLED."""
        if self.enabled and self.run_id:
            self.client.set_terminated(self.run_id, status=status)
        _OPEN_TRACKERS.discard(self)

    def release(self) -> None:
        """Leave the run RUNNING on purpose (a paused run a later call resumes): no process owns it
        now, so neither this process's exit nor a later start marks it failed."""
        if self.enabled and self.run_id:
            self.client.delete_tag(self.run_id, OWNER_TAG)
        _OPEN_TRACKERS.discard(self)


# A run RUNNING in MLflow names the process that owns it (`<host>:<pid>`). When that process has
# ended without finishing the run (a kill, a crash), the run is marked FAILED: at this process's
# exit for its own runs (SIGTERM and SIGINT included, when they end the process through Python),
# and by the next tracker opened on this host for runs whose process is gone (kill -9).
OWNER_TAG = "videofoundry.owner"
INTERRUPTED_TAG = "videofoundry.interrupted"
_log = logging.getLogger(__name__)
_OPEN_TRACKERS: set[RunTracker] = set()


def fail_interrupted_runs(client: Any, experiment_ids: list[str]) -> list[str]:
    """Mark FAILED the RUNNING runs of `experiment_ids` whose owner process on this host is gone.

    Runs owned by a live process, by another host (logged as such), or by nobody (released) are
    left alone.
    Returns the ids of the runs it marked.
    """
    marked = []
    for run in client.search_runs(
        experiment_ids, filter_string="attributes.status = 'RUNNING'", max_results=1000
    ):
        owner = run.data.tags.get(OWNER_TAG, "")
        if owner and owner_pid(owner) is None:  # its pid means nothing on this host
            _log.info("MLflow run %s is owned by %s, not by this host: left alone", run.info.run_id, owner)
        if not owner_gone(owner):
            continue
        pid = owner_pid(owner)
        client.set_tag(run.info.run_id, INTERRUPTED_TAG, f"process {pid} ended while the run was RUNNING")
        client.set_terminated(run.info.run_id, status="FAILED")
        marked.append(run.info.run_id)
    return marked


@atexit.register
def _fail_open_runs() -> None:
    """At exit, runs this process opened and did not finish or release end FAILED."""
    for tracker in list(_OPEN_TRACKERS):
        with contextlib.suppress(Exception):  # the store may be gone at exit; the next start retries
            tracker.set_tags({INTERRUPTED_TAG: "the process exited before the run finished"})
            tracker.finish("FAILED")


def default_tracking_uri(home: str | Path) -> tuple[str, Path]:
    """The embedded default: (sqlite URI of `<home>/mlflow.db`, `<home>/mlartifacts`)."""
    home = Path(home).resolve()
    os.makedirs(home, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts"

"""MLflow run logging for trainers: params, metrics, image grids, short mp4s, checkpoint artifacts.

One `RunTracker` wraps one MLflow run through `MlflowClient` (no global "active run" state, so two
trackers in one process do not collide). The tracking URI is passed in: the embedded default is
`sqlite:///<home>/mlflow.db` with artifacts under `<home>/mlartifacts`; at scale an MLflow server.
A resumed training run passes the stored `run_id` and keeps logging into the same run, so metric
curves continue. On non-zero ranks use `RunTracker.disabled()`: every call is a no-op.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


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
            location = Path(artifact_location).resolve().as_uri() if artifact_location is not None else None
            experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            self.run_id = run_id
        else:
            self.run_id = self.client.create_run(
                experiment_id, run_name=run_name, tags=tags or {}
            ).info.run_id

    @classmethod
    def disabled(cls) -> RunTracker:
        return cls(None, "")

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


def default_tracking_uri(home: str | Path) -> tuple[str, Path]:
    """The embedded default: (sqlite URI of `<home>/mlflow.db`, `<home>/mlartifacts`)."""
    home = Path(home).resolve()
    os.makedirs(home, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts"

"""MLflow run logging for trainers: where a run logs (`TrackingSettings`) and the run (`RunTracker`).

`TrackingSettings` is the one description both trainers take: tracking URI, artifact location,
experiment, data version and the DiT's lineage (registered model, parent run / version).
One `RunTracker` wraps one MLflow run through `MlflowClient` (no global "active run" state, so two
trackers in one process do not collide): configs as flattened params plus a YAML artifact
(`log_config`), metrics (optionally linked to a LoggedModel), images keyed by step (`log_image`,
the UI's image grid per step), short mp4s, checkpoint artifacts, and the data version as a dataset
input (`log_data_version`). Experiments it creates are tagged as model training
(`mlflow.experimentKind`), so the UI opens them on runs, not on GenAI traces. The embedded default URI is `sqlite:///<home>/mlflow.db` with artifacts under
`<home>/mlartifacts`; at scale an MLflow server. A resumed training run passes the stored `run_id`
and keeps logging into the same run, so metric curves continue. On non-zero ranks, or with
`uri=None`, the tracker is disabled: every call is a no-op. A run left RUNNING by a process that
died is marked FAILED (see `fail_interrupted_runs`).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
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
        data_version: the data version the run reads: a dataset input of the run (digest: the
            version, hashed past 36 characters) and a tag (and on registry versions).
        data_source: where that data lives (a folder or URI), the dataset input's source.
        log_checkpoints: log each checkpoint directory as a run artifact (the VAE; the DiT always
            logs what it registers).
        registered_model: registry model name of DiT checkpoints (None: `videofoundry-dit`).
        parent_run_id: the previous DiT stage's run (recorded as tag `previous_stage_run`).
        parent_version: the registry version the DiT stage starts from.
        lineage_run_id: the lineage's parent run; a DiT stage run is its child (`mlflow.parentRunId`)
            and mirrors its loss there at the global step.
        global_step_offset: steps of the stages before this one: metrics log at offset + stage step.
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
    data_source: str | None = None
    lineage_run_id: str | None = None
    global_step_offset: int = 0


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
        self.experiment_id: str | None = None
        if not self.enabled:
            return
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri)
        experiment_id = training_experiment(self.client, experiment, artifact_location)
        self.experiment_id = experiment_id
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

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params, nested mappings flattened to dotted keys and cut to MLflow's limits (`flatten_params`)."""
        if self.enabled and self.run_id:
            from mlflow.entities import Param

            flat = [Param(k, v) for k, v in flatten_params(params).items()]
            for start in range(0, len(flat), PARAMS_PER_BATCH):
                self.client.log_batch(self.run_id, params=flat[start : start + PARAMS_PER_BATCH])

    def log_config(self, name: str, config: Mapping[str, Any]) -> None:
        """A config as params `<name>.<dotted key>` plus the whole of it as artifact `config/<name>.yaml`."""
        if self.enabled and self.run_id:
            self.log_params({name: config})
            self.client.log_dict(
                self.run_id, json.loads(json.dumps(config, default=str)), f"config/{name}.yaml"
            )

    def log_data_version(self, data_version: str, name: str, source: str | None = None) -> None:
        """The data the run trains on as a dataset input (context `training`): digest = the data
        version (`data_digest`), the full version in the dataset's profile and an input tag."""
        if not (self.enabled and self.run_id):
            return
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=data_digest(data_version),
            source_type="local" if source is not None and "://" not in source else "code",
            source=json.dumps({"uri": _artifact_uri(source)} if source is not None else {"tags": {}}),
            profile=json.dumps({"data_version": data_version}),
        )
        tags = [InputTag("mlflow.data.context", "training"), InputTag(DATA_VERSION_TAG, data_version[:5000])]
        self.client.log_inputs(self.run_id, datasets=[DatasetInput(dataset, tags)])

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.enabled and self.run_id:
            for key, value in tags.items():
                self.client.set_tag(self.run_id, key, value)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int, model_id: str | None = None, run_id: str | None = None
    ) -> None:
        """Finite values at `step`; with `model_id` they are also that LoggedModel's metrics.
        `run_id` logs to another run of the same store (the lineage's parent run)."""
        target = run_id or self.run_id
        if self.enabled and target:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            batch = [
                Metric(k, float(v), now, step, model_id=model_id)
                for k, v in metrics.items()
                if np.isfinite(v)
            ]
            self.client.log_batch(target, metrics=batch)

    def log_file(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and self.run_id:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dir(self, path: str | Path, artifact_path: str | None = None) -> None:
        if self.enabled and self.run_id:
            self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def log_image(self, image: np.ndarray | str | Path, key: str, step: int) -> None:
        """(H, W, 3) uint8 RGB, or a PNG file, as image `key` at `step` (MLflow's per-step images:
        the run's Artifacts > images and the image grid of the run comparison view)."""
        if not (self.enabled and self.run_id):
            return
        if not isinstance(image, np.ndarray):
            from PIL import Image

            with Image.open(image) as opened:
                image = np.asarray(opened.convert("RGB"))
        self.client.log_image(self.run_id, image, key=key, step=step, synchronous=True)

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

    def set_status(self, run_id: str, status: str) -> None:
        """Another run's status (the lineage's parent run): RUNNING reopens it, else it ends."""
        if not self.enabled:
            return
        if status == "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        else:
            self.client.set_terminated(run_id, status=status)

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


# The experiment kind MLflow 3's UI reads: without it a new experiment opens in GenAI mode
# (traces, token and cost charts) instead of on its training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
DATA_VERSION_TAG = "videofoundry.data_version"
PARAM_KEY_LIMIT = 250  # MLflow's limits on a param's key and value, and on params per log_batch call
PARAM_VALUE_LIMIT = 6000
PARAMS_PER_BATCH = 100
DIGEST_LIMIT = 36  # a dataset digest's column width in MLflow's SQL stores


def training_experiment(client: Any, name: str, artifact_location: str | Path | None = None) -> str:
    """The id of experiment `name`, created (at `artifact_location`) if missing, tagged as model
    training unless it already names a kind."""
    found = client.get_experiment_by_name(name)
    if found is None:
        location = _artifact_uri(artifact_location) if artifact_location is not None else None
        return str(
            client.create_experiment(
                name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
            )
        )
    if EXPERIMENT_KIND_TAG not in found.tags:
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return str(found.experiment_id)


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested mappings → {"a.b.c": str(value)}; lists and tuples as JSON. A value longer than MLflow
    allows is cut and marked `…[truncated, N chars]`; a key longer than allowed keeps its head and a
    hash of the whole (keys stay unique)."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat |= flatten_params(value, name)
            continue
        text = json.dumps(value, default=str) if isinstance(value, list | tuple) else str(value)
        if len(text) > PARAM_VALUE_LIMIT:
            mark = f"…[truncated, {len(text)} chars]"
            text = text[: PARAM_VALUE_LIMIT - len(mark)] + mark
        if len(name) > PARAM_KEY_LIMIT:
            name = name[: PARAM_KEY_LIMIT - 13] + "~" + hashlib.sha1(name.encode()).hexdigest()[:12]
        flat[name] = text
    return flat


def data_digest(data_version: str) -> str:
    """A dataset digest for `data_version`: the version itself when it fits MLflow's 36 characters,
    else `sha256:` and the first 29 hex digits of its SHA-256."""
    if len(data_version) <= DIGEST_LIMIT:
        return data_version
    return "sha256:" + hashlib.sha256(data_version.encode()).hexdigest()[: DIGEST_LIMIT - 7]


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


LINEAGE_TAG = "videofoundry.lineage"


def lineage_run(settings: TrackingSettings, follows: str | None, run_name: str = "lineage") -> str | None:
    """The parent run of a lineage's stage runs, in `settings.experiment`: `settings.lineage_run_id`,
    else the parent of run `follows` (the previous stage's run, or this stage's resumed run), else a
    new run named `run_name` (left RUNNING, owned by no process, until the last stage finishes it).
    None without a tracking URI."""
    if settings.uri is None:
        return None
    if settings.lineage_run_id:
        return settings.lineage_run_id
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.uri)
    if follows is not None:
        parent = client.get_run(follows).data.tags.get("mlflow.parentRunId")
        if parent:
            return str(parent)
    experiment_id = training_experiment(client, settings.experiment, settings.artifact_location)
    tags = {LINEAGE_TAG: "true", "data_version": settings.data_version}
    return str(client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id)


def default_tracking_uri(home: str | Path) -> tuple[str, Path]:
    """The embedded default: (sqlite URI of `<home>/mlflow.db`, `<home>/mlartifacts`)."""
    home = Path(home).resolve()
    os.makedirs(home, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts"

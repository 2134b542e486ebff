"""Model references: what a user may pass as `--model`, resolved to a local bundle and a version label.

Accepted references:
- ``tiny-random``: the built-in tiny model (DiT preset ``tiny`` with ``token_replace`` I2V, VAE
  preset ``tiny``, text encoder ``tiny-random``), weights drawn from a fixed seed; no files.
- ``models:/<name>@<alias>`` or ``models:/<name>/<version>``: a version of the MLflow model
  registry. Versions made from a LoggedModel (with a `model_id`) are MLflow model folders whose
  pyfunc data is the bundle (`training.logged_models`); older versions' `source` is the bundle
  directory itself. Remote files are downloaded into the cache once per (registry,
  name, version).
- ``runs:/<run_id>/<path>``, ``mlflow-artifacts:/...``, ``s3://...`` … : an MLflow artifact URI of a
  bundle directory, downloaded the same way.
- a local path (or ``file://`` URI): a bundle directory, an MLflow model folder holding one, a diffusers pipeline directory, or a
  directory/file that `model.checkpoints` reads as a transformer (the VAE then comes from a
  sibling `vae/`).
- nothing (None): the registry's ``champion`` alias of the registered model, else `NoChampionError`.

A registry that cannot be asked raises `serving.registry.RegistryUnavailableError`, never
`NoChampionError`: only a missing model, version or alias means "not there".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.registry import alias_version, model_version, registry_client

TINY_RANDOM = "tiny-random"
DEFAULT_REGISTERED_MODEL = "videofoundry-dit"
CHAMPION_ALIAS = "champion"
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))/?$")


class ModelReferenceError(ValueError):
    """A model reference that cannot be resolved; the message names it and says what to pass instead."""


class NoChampionError(ModelReferenceError):
    """No reference was given and the registry has no champion to fall back on."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved reference.

    Attributes:
        reference: what the user passed (or the champion URI when nothing was passed).
        local_path: the bundle on disk; None for ``tiny-random``.
        version: the label shown to users, e.g. ``videofoundry-dit v3 (@champion)``.
        key: identity of the weights (same key → same weights), used to cache loaded pipelines.
        details: registry name/version/alias/run id/source when they exist.
    """

    reference: str
    local_path: Path | None
    version: str
    key: str
    details: dict[str, Any] = field(default_factory=dict)


def _uri_slug(uri: str) -> str:
    return hashlib.sha1(uri.encode()).hexdigest()[:12]


def _download(artifact_uri: str, tracking_uri: str | None, destination: Path) -> Path:
    """Download an artifact directory once; a finished download is marked by a `.complete` file."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    marker = destination / ".complete"
    if marker.exists():
        found = [p for p in destination.iterdir() if p.name != ".complete"]
        if len(found) == 1 and found[0].is_dir():
            return found[0]
        return destination
    destination.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, tracking_uri=tracking_uri, dst_path=str(destination)
            )
        )
    except (MlflowException, OSError) as err:
        raise ModelReferenceError(f"cannot download model artifacts from {artifact_uri}: {err}") from err
    marker.write_text(artifact_uri)
    return local


def _registry_source(
    reference: str, tracking_uri: str | None, cache_dir: Path, *, explicit: bool
) -> ModelSource:
    match = _MODELS_URI.match(reference)
    if match is None:
        raise ModelReferenceError(
            f"model reference {reference!r} is not models:/<name>@<alias> or models:/<name>/<version>"
        )
    name, alias, number = match.group("name"), match.group("alias"), match.group("version")
    where = tracking_uri or "the default MLflow tracking URI"
    # RegistryUnavailableError (server down, permission, bad URI) propagates: it is not "not found".
    if alias:
        number = alias_version(tracking_uri, name, alias)
        if number is None and not explicit:
            raise NoChampionError(
                f"no model was given and the registry at {where} has no '{alias}' alias on '{name}' "
                f"(nothing promoted yet); pass a model reference such as --model tiny-random, a bundle "
                f"path, or models:/{name}/<version>"
            )
    version = model_version(tracking_uri, name, number) if number is not None else None
    if version is None:
        raise ModelReferenceError(
            f"model reference {reference!r} not found in the registry at {where}; list the registered "
            f"versions in the MLflow UI or pass models:/{name}/<version>"
        )
    source = str(version.source)
    model_id = getattr(version, "model_id", None)
    # A version made from a LoggedModel: its files are the logged model's artifacts (an MLflow model
    # folder whose pyfunc data is the bundle), wherever its source says.
    files = _logged_model_location(tracking_uri, model_id) if model_id else source
    destination = cache_dir / "registry" / _uri_slug(tracking_uri or "") / name / str(version.version)
    local = bundle_of(
        Path(files.removeprefix("file://"))
        if _is_local(files)
        else _download(files, tracking_uri, destination)
    )
    label = f"{name} v{version.version}" + (f" (@{alias})" if alias else "")
    return ModelSource(
        reference=reference,
        local_path=local,
        version=label,
        key=f"registry:{tracking_uri}:{name}:{version.version}",
        details={
            "registered_model": name,
            "registered_version": str(version.version),
            "alias": alias,
            "run_id": version.run_id,
            "source": source,
        },
    )


def _logged_model_location(tracking_uri: str | None, model_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return str(registry_client(tracking_uri).get_logged_model(model_id).artifact_location)
    except MlflowException as err:
        raise ModelReferenceError(
            f"the registered version's logged model {model_id} cannot be read: {err}"
        ) from err


def bundle_of(directory: Path) -> Path:
    """The pipeline bundle inside an MLflow model folder (its pyfunc flavor's `data`); `directory`
    itself when it holds no MLmodel file (a plain bundle, or a version registered as a raw folder)."""
    import yaml

    mlmodel = directory / "MLmodel"
    if not mlmodel.is_file():
        return directory
    flavors = (yaml.safe_load(mlmodel.read_text()) or {}).get("flavors", {})
    data = flavors.get("python_function", {}).get("data")
    return directory / data if data else directory


def _is_local(uri: str) -> bool:
    """A file:// URI or a plain path (no `scheme:/` prefix such as runs:/, s3://, mlflow-artifacts:/)."""
    return uri.startswith("file://") or ":/" not in uri


def resolve_reference(
    reference: str | None,
    *,
    tracking_uri: str | None = None,
    cache_dir: str | Path | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
) -> ModelSource:
    """Resolve `reference` (see the module docstring) to a `ModelSource`.

    Args:
        reference: the user's reference, or None for the registry's champion.
        tracking_uri: MLflow tracking/registry URI (e.g. ``sqlite:///<home>/mlflow.db``); None lets
            MLflow use MLFLOW_TRACKING_URI or its default.
        cache_dir: where registry/artifact downloads are kept (default ``~/.cache/videofoundry``).
        registered_model: the registry name used when `reference` is None.
    """
    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "videofoundry"
    if reference is None or reference == "":
        return _registry_source(
            f"models:/{registered_model}@{CHAMPION_ALIAS}", tracking_uri, cache, explicit=False
        )
    reference = reference.strip()
    if reference == TINY_RANDOM:
        return ModelSource(TINY_RANDOM, None, "tiny-random (seed 0, untrained)", key=TINY_RANDOM)
    if reference.startswith("models:/"):
        return _registry_source(reference, tracking_uri, cache, explicit=True)
    if not _is_local(reference):
        destination = cache / "artifacts" / _uri_slug(f"{tracking_uri}|{reference}")
        local = bundle_of(_download(reference, tracking_uri, destination))
        return ModelSource(
            reference, local, f"artifact {reference}", key=f"artifact:{tracking_uri}:{reference}"
        )
    path = Path(reference.removeprefix("file://")).expanduser()
    if not path.exists():
        raise ModelReferenceError(
            f"model reference {reference!r} is neither 'tiny-random', a models:/ or artifact URI, nor an existing path"
        )
    resolved = bundle_of(path.resolve()) if path.is_dir() else path.resolve()
    stamp = (
        max((p.stat().st_mtime_ns for p in resolved.rglob("*") if p.is_file()), default=0)
        if resolved.is_dir()
        else resolved.stat().st_mtime_ns
    )
    return ModelSource(reference, resolved, f"local {resolved.name}", key=f"path:{resolved}:{stamp}")

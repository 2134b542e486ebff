"""Model registry: every DiT checkpoint becomes a version of `videofoundry-dit` (MLflow registry).

A version's source is the checkpoint's `transformer/` folder (our `model.checkpoints` format: EMA
weights + config.json, loadable with `load_transformer`), logged as a run artifact. Tags that
orchestration and promotion read:

    stage           image_256 … sft
    step            optimizer steps done in the stage
    data_version    the data version ref the stage read (e.g. dvc:tables/tiers.parquet@<md5>)
    code_version    git commit of the training code (+ "-dirty" with uncommitted changes)
    config          the training config as JSON (config_sha: its SHA-256, 16 hex digits)
    parent_version  the version this stage started from (previous stage's final one; "" for the first)
    final           "true" on the last checkpoint of a stage
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

REGISTERED_MODEL = "videofoundry-dit"
TAG_VALUE_LIMIT = 5000  # MLflow's tag value limit on SQL backends (8000 on newer schemas)


def code_version(repo: Path | None = None) -> str:
    """`VIDEOFOUNDRY_CODE_VERSION` if set (containers), else the git commit of `repo` (this checkout)."""
    if os.environ.get("VIDEOFOUNDRY_CODE_VERSION"):
        return os.environ["VIDEOFOUNDRY_CODE_VERSION"]
    root = repo or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "training", "model"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(
            f"cannot read the code version from git in {root} ({err}); set VIDEOFOUNDRY_CODE_VERSION"
        ) from err
    return sha + ("-dirty" if dirty else "")


def config_tags(config_json: str) -> dict[str, str]:
    sha = hashlib.sha256(config_json.encode()).hexdigest()[:16]
    shown = (
        config_json
        if len(config_json) <= TAG_VALUE_LIMIT
        else f"(too long; see run param train_config) sha={sha}"
    )
    return {"config": shown, "config_sha": sha}


def register_checkpoint(
    tracking_uri: str,
    run_id: str,
    artifact_path: str,
    tags: dict[str, str],
    model_name: str = REGISTERED_MODEL,
) -> str:
    """Create a model version from the run artifact `artifact_path`; returns the version number."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(
            model_name, description="HunyuanVideo-style DiT, one version per checkpoint"
        )
    source = f"{client.get_run(run_id).info.artifact_uri}/{artifact_path}"
    version = client.create_model_version(model_name, source=source, run_id=run_id, tags=tags)
    return str(version.version)


def versions_of_run(tracking_uri: str, run_id: str, model_name: str = REGISTERED_MODEL) -> list[str]:
    """The versions of `model_name` registered from run `run_id`, oldest first (the registry's record)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.search_model_versions(f"run_id='{run_id}'")
    return sorted((str(v.version) for v in found if v.name == model_name), key=int)

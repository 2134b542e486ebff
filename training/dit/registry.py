"""Model registry: every DiT checkpoint becomes a version of `videofoundry-dit` (MLflow registry).

A version is linked to the checkpoint's LoggedModel (`model_id`; `training.logged_models`) and its
source is that model's artifact folder: an MLflow model folder with the pyfunc flavor whose
`bundle/` is the checkpoint's pipeline bundle (EMA weights; or, without a VAE in the trainer, its
`transformer/` files). Tags that orchestration
and promotion read:

    stage           image_256 … sft
    step            optimizer steps done in the stage (global_step: across the lineage's stages)
    data_version    the data version ref the stage read (e.g. dvc:tables/tiers.parquet@<md5>)
    code_version    git commit of the training code (+ "-dirty" with uncommitted changes)
    config_sha      SHA-256 (16 hex digits) of the training config (the config: the run's params)
    parent_version  the version this stage started from (previous stage's final one; "" for the first)
    model_id        the LoggedModel
    final           "true" on the last checkpoint of a stage
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from training.logged_models import register_logged_model

REGISTERED_MODEL = "videofoundry-dit"


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
    """`config_sha`: the SHA-256 (16 hex digits) of the training config (the config itself is in the
    run's params and its `config/` artifact)."""
    return {"config_sha": hashlib.sha256(config_json.encode()).hexdigest()[:16]}


def register_checkpoint(
    tracking_uri: str,
    model_id: str,
    run_id: str,
    tags: dict[str, str],
    model_name: str = REGISTERED_MODEL,
) -> str:
    """A version of `model_name` from the checkpoint's LoggedModel `model_id`; returns its number."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    description = "HunyuanVideo-style DiT, one version per checkpoint"
    return register_logged_model(client, model_name, model_id, run_id, tags, description)


def versions_of_run(tracking_uri: str, run_id: str, model_name: str = REGISTERED_MODEL) -> list[str]:
    """The versions of `model_name` registered from run `run_id`, oldest first (the registry's record)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.search_model_versions(f"run_id='{run_id}'")
    return sorted((str(v.version) for v in found if v.name == model_name), key=int)

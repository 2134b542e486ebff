"""The VAE in the model registry: each exported VAE becomes a version of `videofoundry-vae`.

`train_vae` registers its export (`model.checkpoints` format: safetensors + config.json, what the
DiT's latent cache and serving read) as a LoggedModel of the training run at its last step, with the
held-out metrics of that step linked to it, and moves the alias `current` to the new version.
`current`, not `champion`: nothing gates the VAE on its own (its PSNR floor is one of the DiT
champion's promotion gates), and `current` is exactly the VAE the workspace's DiT encodes with
(`latest` is reserved by MLflow: `models:/videofoundry-vae/latest` is the newest version anyway).
Re-running a finished training registers nothing new (the version of that run and step exists).

Version tags: step, data_version, code_version, model_id, and `heldout/<metric>` of the last
held-out evaluation.
"""

from __future__ import annotations

import time
from pathlib import Path

from training.dit.registry import code_version
from training.logged_models import VAE_FACE, log_checkpoint_model, register_logged_model
from training.results import TrainResult
from training.tracking import TrackingSettings

REGISTERED_VAE = "videofoundry-vae"
VAE_ALIAS = "current"


def register_vae(tracking: TrackingSettings, result: TrainResult, export_dir: Path) -> str | None:
    """Register the VAE exported to `export_dir` by run `result.run_id` and point `@current` at it;
    returns the version (None without a tracking URI or run)."""
    if tracking.uri is None or result.run_id is None:
        return None
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)
    step = str(result.steps_done)
    found = [
        v
        for v in client.search_model_versions(f"run_id='{result.run_id}'")
        if v.name == REGISTERED_VAE and v.tags.get("step") == step
    ]
    if found:
        version = str(found[0].version)
    else:
        run = client.get_run(result.run_id)
        heldout = {
            f"heldout/{k}": v for k, v in (result.evals[-1] if result.evals else {}).items() if k != "step"
        }
        model_id = log_checkpoint_model(
            client, run.info.experiment_id, result.run_id,
            name=f"vae-step{step}", step=result.steps_done, parts={".": export_dir},
            params={"step": step}, tags={"data_version": result.data_version}, pyfunc=VAE_FACE,
            model_type="videofoundry-vae",
        )  # fmt: skip
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, result.steps_done, model_id=model_id) for k, v in heldout.items()]
        if metrics:
            client.log_batch(result.run_id, metrics=metrics)
        tags = {
            "step": step,
            "data_version": result.data_version,
            "code_version": code_version(),
            "model_id": model_id,
            **{k: repr(float(v)) for k, v in heldout.items()},
        }
        description = "Causal 3D VAE (EMA weights, model.checkpoints format), one version per export"
        version = register_logged_model(client, REGISTERED_VAE, model_id, result.run_id, tags, description)
    client.set_registered_model_alias(REGISTERED_VAE, VAE_ALIAS, version)
    return version

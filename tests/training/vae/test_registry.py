"""A VAE training run in MLflow (real SQLite store): configs as params, its data as a dataset input,
sample grids as step-keyed images, and the export registered as `videofoundry-vae@current`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.training.vae.conftest import micro_config
from training.tracking import TrackingSettings
from training.vae.config import CurriculumStage
from training.vae.registry import REGISTERED_VAE, VAE_ALIAS
from training.vae.run import VAEJob, train_vae

pytestmark = pytest.mark.slow  # ~20 s: a two-step VAE run and a fresh MLflow store


def test_the_exported_vae_is_a_logged_model_registered_at_current(
    tmp_path: Path, clip_paths: list[Path]
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingSettings(
        uri=uri, artifact_location=tmp_path / "art", data_version="files:abc", data_source=str(tmp_path)
    )
    stage = CurriculumStage(
        name="short", steps=2, frames=5, height=16, width=16, video_batch=1, image_batch=1
    )
    config = micro_config(stages=(stage,), checkpoint_every=2, log_every=1, disc_start_step=100)
    job = VAEJob(
        config, clip_paths, tmp_path / "ckpt", tracking,
        evaluator=lambda vae: {"psnr": 12.5},
        sample_maker=lambda vae: {"recon_grid": np.full((16, 32, 3), 90, np.uint8)},
    )  # fmt: skip
    result = train_vae(job, tmp_path / "export")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    [version] = client.search_model_versions(f"name='{REGISTERED_VAE}'")
    assert client.get_registered_model(REGISTERED_VAE).aliases == {VAE_ALIAS: version.version}
    assert version.run_id == result.run_id and version.tags["step"] == str(config.total_steps)
    assert version.tags["heldout/psnr"] == "12.5" and version.tags["data_version"] == "files:abc"
    model = client.get_logged_model(version.tags["model_id"])
    assert [m.key for m in model.metrics] == ["heldout/psnr"]
    folder = Path(model.artifact_location.removeprefix("file://")) / "bundle"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (tmp_path / "export").iterdir())
    mlmodel = (
        folder.parent / "MLmodel"
    ).read_text()  # loadable by mlflow.pyfunc (tests/evaluation/test_mlflow_vae.py)
    assert "loader_module: evaluation.mlflow_vae" in mlmodel and "data: bundle" in mlmodel

    run = client.get_run(result.run_id)
    assert run.data.params["train.seed"] == str(config.seed) and "vae.latent_channels" in run.data.params
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.digest == "files:abc" and dataset.dataset.name == "vae-media"
    images = [a.path for a in client.list_artifacts(result.run_id, "images")]
    assert any(p.startswith(f"images/recon_grid+step+{config.total_steps}+") for p in images)

    train_vae(job, tmp_path / "export")  # finished already: the same version stays @current
    assert len(client.search_model_versions(f"name='{REGISTERED_VAE}'")) == 1

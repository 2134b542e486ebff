"""What a training run records in MLflow, against a real SQLite store: configs as flattened params
plus a YAML artifact, step-keyed images, the data version as a dataset input, the experiment kind,
and one parent run per lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from training.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    PARAM_VALUE_LIMIT,
    RunTracker,
    TrackingSettings,
    data_digest,
    flatten_params,
    lineage_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One store for the module (creating MLflow's tables takes seconds); experiments per test."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root / 'mlflow.db'}", root / "art"


def test_a_config_becomes_dotted_params_cut_to_mlflows_limit_and_a_yaml_artifact(store) -> None:
    uri, art = store
    tracker = RunTracker(uri, "configs", artifact_location=art)
    config = {"lr": 1e-4, "stages": [{"name": "a", "steps": 2}], "model": {"depth": 2, "prompt": "x" * 7000}}
    tracker.log_config("train", config)
    tracker.finish()
    params = MlflowClient(uri).get_run(tracker.run_id).data.params
    assert params["train.lr"] == "0.0001" and params["train.model.depth"] == "2"
    assert params["train.stages"] == '[{"name": "a", "steps": 2}]'
    long = params["train.model.prompt"]
    assert len(long) == PARAM_VALUE_LIMIT and long.endswith("…[truncated, 7000 chars]")
    [artifact] = list(art.rglob("train.yaml"))
    assert artifact.parent.name == "config" and yaml.safe_load(artifact.read_text()) == config


def test_flatten_params_keeps_overlong_keys_unique() -> None:
    flat = flatten_params({"k" * 300: 1, "k" * 299: 2})
    assert len(flat) == 2 and all(len(k) <= 250 for k in flat) and sorted(flat.values()) == ["1", "2"]


def test_images_are_logged_under_a_key_per_step(store) -> None:
    uri, art = store
    tracker = RunTracker(uri, "images", artifact_location=art)
    for step in (1, 2):
        tracker.log_image(np.full((8, 8, 3), 40 * step, np.uint8), "recon_grid", step)
    tracker.finish()
    run = MlflowClient(uri).get_run(tracker.run_id)
    assert run.data.tags["mlflow.loggedImages"] == "True"
    pngs = sorted(p.name for p in art.rglob("images/recon_grid*.png"))
    assert len(pngs) == 2 and all(p.startswith("recon_grid+step+") for p in pngs)
    assert [p.split("+")[2] for p in pngs] == ["1", "2"]


def test_the_data_version_is_a_dataset_input_whose_digest_is_the_version(store, tmp_path: Path) -> None:
    uri, art = store
    long_version = "dvc:tables/clips.parquet@" + "a" * 32 + ";dvc:tables/tiers.parquet@" + "b" * 32
    for version in ("records:0123456789ab", long_version):
        tracker = RunTracker(uri, "data", artifact_location=art)
        tracker.log_data_version(version, "dit-sft_set", str(tmp_path / "tables"))
        tracker.finish()
        [found] = MlflowClient(uri).get_run(tracker.run_id).inputs.dataset_inputs
        assert found.dataset.name == "dit-sft_set" and found.dataset.digest == data_digest(version)
        assert found.dataset.source_type == "local" and str(tmp_path / "tables") in found.dataset.source
        assert {t.key: t.value for t in found.tags}["videofoundry.data_version"] == version
    assert data_digest("records:0123456789ab") == "records:0123456789ab"
    assert len(data_digest(long_version)) == 36 and data_digest(long_version).startswith("sha256:")


def test_experiments_are_marked_as_model_training_new_or_existing(store) -> None:
    uri, art = store
    client = MlflowClient(uri)
    RunTracker(uri, "fresh", artifact_location=art).finish()
    old = client.create_experiment("older", artifact_location=(art / "older").as_uri())
    RunTracker(uri, "older").finish()
    for name in ("fresh", "older"):
        assert client.get_experiment_by_name(name).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND
    client.set_experiment_tag(old, EXPERIMENT_KIND_TAG, "finetuning")  # a kind set by hand is kept
    RunTracker(uri, "older").finish()
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == "finetuning"


def test_a_lineage_has_one_parent_run_its_stages_find_again(store) -> None:
    uri, art = store
    settings = TrackingSettings(uri=uri, artifact_location=art, experiment="lineage-test")
    assert lineage_run(TrackingSettings(), None) is None
    parent = lineage_run(settings, None)
    child = RunTracker(uri, "lineage-test", tags={"mlflow.parentRunId": parent})
    assert lineage_run(settings, child.run_id) == parent  # the next stage follows the child
    assert lineage_run(settings, None) != parent  # a new lineage starts a new parent
    child.finish()
    run = MlflowClient(uri).get_run(parent)
    assert run.data.tags["videofoundry.lineage"] == "true" and run.info.run_name == "lineage"

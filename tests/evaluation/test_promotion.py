"""Promotion against a real MLflow registry (SQLite backend)."""

import json

import pytest
from mlflow.tracking import MlflowClient

from evaluation.promotion import Gate, champion_version, promote


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    client.create_registered_model("videofoundry-dit")
    for _ in range(2):
        run = client.create_run(experiment)
        client.create_model_version("videofoundry-dit", f"runs:/{run.info.run_id}/model", run.info.run_id)
    return uri, client


def test_gates_decide_and_every_decision_is_recorded(registry):
    uri, client = registry
    assert champion_version(uri, "videofoundry-dit") is None

    ok = promote(
        uri, "videofoundry-dit", 1, [Gate("vae_psnr_db", 31.2, 28.0), Gate("gsb_win_rate", 0.55, 0.5)]
    )
    assert ok.promoted and ok.previous_champion is None
    assert champion_version(uri, "videofoundry-dit") == "1"

    bad = promote(
        uri, "videofoundry-dit", 2, [Gate("vae_psnr_db", 31.0, 28.0), Gate("flicker", 0.2, 0.1, False)]
    )
    assert not bad.promoted
    assert "flicker 0.2 (needs ≤ 0.1)" in bad.reason
    assert champion_version(uri, "videofoundry-dit") == "1"  # unchanged

    tags = client.get_model_version("videofoundry-dit", "2").tags
    assert tags["promotion.decision"] == "rejected"
    assert json.loads(tags["promotion.gates"])["flicker"]["passed"] is False
    assert client.get_model_version("videofoundry-dit", "1").tags["promotion.decision"] == "promoted"


def test_missing_measurement_or_no_gates_never_promotes(registry):
    uri, _ = registry
    assert not promote(uri, "videofoundry-dit", 1, [Gate("human_eval", None, 0.5)]).promoted
    assert "not measured" in promote(uri, "videofoundry-dit", 1, [Gate("human_eval", None, 0.5)]).reason
    assert not promote(uri, "videofoundry-dit", 1, []).promoted
    assert champion_version(uri, "videofoundry-dit") is None

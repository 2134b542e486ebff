"""Promotion against a real MLflow registry (SQLite backend)."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from evaluation.config import EvaluationConfig
from evaluation.promotion import (
    Gate,
    MissingVersionError,
    candidate_comparison,
    champion_version,
    decide_promotion,
    promote,
)


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


def test_the_sft_candidate_meets_the_champion_or_else_the_previous_stage(registry):
    uri, client = registry
    with pytest.raises(MissingVersionError, match="stage=sft; run dit_sft first"):
        candidate_comparison(uri, "videofoundry-dit")
    client.set_model_version_tag("videofoundry-dit", "2", "stage", "sft")
    with pytest.raises(MissingVersionError, match="neither a champion nor a video_high_long version"):
        candidate_comparison(uri, "videofoundry-dit")
    client.set_model_version_tag("videofoundry-dit", "1", "stage", "video_high_long")
    comparison = candidate_comparison(uri, "videofoundry-dit")
    assert (comparison.candidate, comparison.baseline, comparison.campaign) == ("2", "1", "sft-v2-vs-v1")
    assert [m.model_ref for m in comparison.models] == [
        "models:/videofoundry-dit/2",
        "models:/videofoundry-dit/1",
    ]
    client.set_registered_model_alias("videofoundry-dit", "champion", "2")  # already champion: previous stage
    assert candidate_comparison(uri, "videofoundry-dit").baseline == "1"


def test_decide_promotion_gathers_the_gates_and_waits_for_people_where_required(registry, tmp_path):
    uri, client = registry
    client.set_model_version_tag("videofoundry-dit", "2", "stage", "sft")
    report = tmp_path / "vae_eval.json"
    report.write_text(json.dumps({"benchmarks": {"heldout": {"psnr": 12.5}, "imagenet": {"psnr": 14.0}}}))
    pq.write_table(pa.table({"temporal_consistency": [0.9, 0.7]}), tmp_path / "generations.parquet")
    evidence = {
        "vae_report": report,
        "generations": tmp_path / "generations.parquet",
        "human_eval_db": f"sqlite:///{tmp_path / 'he.db'}",
        "campaign": None,
    }
    floors = EvaluationConfig.preset("tiny", vae_psnr_floor_db=10.0)
    blocked = decide_promotion(
        uri, "videofoundry-dit", floors=floors.replace(require_human_eval=True), **evidence
    )
    assert not blocked.promoted and "human_eval_overall_win_rate not measured" in blocked.reason
    assert champion_version(uri, "videofoundry-dit") is None
    too_blurry = decide_promotion(
        uri, "videofoundry-dit", floors=floors.replace(vae_psnr_floor_db=13.0), **evidence
    )
    assert not too_blurry.promoted and "vae_psnr_db 12.5 (needs ≥ 13)" in too_blurry.reason
    decision = decide_promotion(uri, "videofoundry-dit", floors=floors, **evidence)
    assert decision.promoted and decision.version == "2" and "temporal_consistency 0.8 " in decision.reason
    assert champion_version(uri, "videofoundry-dit") == "2"

"""Promotion against a real MLflow registry (SQLite backend), and against one that cannot be reached."""

import json
import socket

import cv2
import numpy as np
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
from evaluation.vae_baselines import VaeFloorConfig, vae_floor_verdict
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import evaluate_clips
from serving import NoChampionError, RegistryUnavailableError, resolve_reference


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
    assert "flicker 0.2 (needs ≤ 0.1; short by 0.1)" in bad.reason
    assert champion_version(uri, "videofoundry-dit") == "1"  # unchanged

    rejected = client.get_model_version("videofoundry-dit", "2")
    assert rejected.tags["promotion.decision"] == "rejected"
    assert json.loads(rejected.tags["promotion.gates"])["flicker"]["passed"] is False
    assert rejected.description.startswith("not promoted to @champion: failed: flicker 0.2")
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


def _pan(frames: int = 9, size: int = 64, seed: int = 0, step: int = 1) -> np.ndarray:
    """A smooth textured picture panned `step` px per frame: uint8 (T, H, W, 3)."""
    rng = np.random.default_rng(seed)
    picture = cv2.resize(rng.integers(0, 256, (24, 48, 3), dtype=np.uint8), (size * 2, size), cv2.INTER_CUBIC)
    return np.stack([picture[:, t * step : t * step + size] for t in range(frames)])


def _video_report(tmp_path, name, clips):
    config = VideoEvalConfig.preset("tiny", feature_frames=3)
    report = evaluate_clips([(f"{name}{i}.mp4", clip) for i, clip in enumerate(clips)], config=config)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report.to_dict()))
    return path


def _vae_report(tmp_path, name, psnr):
    floor = vae_floor_verdict(psnr, VaeFloorConfig.preset("tiny"), heldout_size=64, heldout_frames=9)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"benchmarks": {k: {"psnr": v} for k, v in psnr.items()}, "floor": floor}))
    return path


@pytest.mark.slow  # 25 s on the loaded 2-core machine: MobileNetV2 features of 4 clips
def test_decide_promotion_applies_the_vae_floor_the_video_gates_and_says_no_campaign_ran(registry, tmp_path):
    uri, client = registry
    client.set_model_version_tag("videofoundry-dit", "2", "stage", "sft")
    moving = _video_report(tmp_path, "moving", [_pan(seed=s) for s in range(2)])
    frozen = _video_report(tmp_path, "frozen", [np.stack([_pan(seed=s)[0]] * 9) for s in range(2)])
    # What the tiny lineage's VAE scored (12.5 / 12.2 dB) against what a VAE worth promoting scores.
    blurry = _vae_report(tmp_path, "blurry", {"heldout_images": 12.5, "heldout_clips": 12.2})
    sharp = _vae_report(tmp_path, "sharp", {"heldout_images": 24.0, "heldout_clips": 25.0})
    tiny = EvaluationConfig.preset("tiny")
    evidence = {"human_eval_db": f"sqlite:///{tmp_path / 'he.db'}", "campaign": None}

    vae_fails = decide_promotion(
        uri, "videofoundry-dit", vae_report=blurry, video_report=moving, config=tiny, **evidence
    )
    assert not vae_fails.decision.promoted
    failed = {g.name: g for g in vae_fails.decision.gates if not g.passed}
    assert set(failed) == {"vae_psnr_db[heldout_images]", "vae_psnr_db[heldout_clips]"}
    # The floor is the mean-colour PSNR of the same held-out items + 3.1 dB (≈ 12.9 + 3.1).
    assert failed["vae_psnr_db[heldout_images]"].threshold == pytest.approx(16.0, abs=0.3)
    assert failed["vae_psnr_db[heldout_images]"].shortfall == pytest.approx(3.5, abs=0.3)
    assert "short by 3." in vae_fails.decision.reason
    assert "no human campaign was run" in vae_fails.decision.reason
    assert champion_version(uri, "videofoundry-dit") is None

    frozen_fails = decide_promotion(
        uri, "videofoundry-dit", vae_report=sharp, video_report=frozen, config=tiny, **evidence
    )
    assert not frozen_fails.decision.promoted
    assert [g.name for g in frozen_fails.decision.gates if not g.passed] == ["video.dynamic_degree"]

    blocked = decide_promotion(
        uri,
        "videofoundry-dit",
        vae_report=sharp,
        video_report=moving,
        config=tiny.replace(require_human_eval=True),
        **evidence,
    )
    assert not blocked.decision.promoted
    assert (
        "human_eval_overall_gsb_ci_low not measured (needs > 0): no human campaign was run"
        in blocked.decision.reason
    )

    passed = decide_promotion(
        uri, "videofoundry-dit", vae_report=sharp, video_report=moving, config=tiny, **evidence
    )
    assert passed.decision.promoted and passed.decision.version == "2"
    assert {g.name for g in passed.decision.gates} >= {
        "video.temporal_flickering",
        "vae_psnr_db[heldout_clips]",
    }
    version = client.get_model_version("videofoundry-dit", "2")
    assert (
        "no human campaign was run; promotion rests on the automatic gates alone"
        in version.tags["promotion.reason"]
    )
    assert version.description.startswith("promoted to @champion: passed: ")
    assert champion_version(uri, "videofoundry-dit") == "2"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens there


def test_a_registry_that_cannot_be_reached_is_an_error_not_no_champion(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    down = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(RegistryUnavailableError, match=f"registry at {down}.*not read as 'no champion'"):
        champion_version(down, "videofoundry-dit")
    with pytest.raises(RegistryUnavailableError):
        candidate_comparison(down, "videofoundry-dit")
    with pytest.raises(RegistryUnavailableError):
        promote(down, "videofoundry-dit", 1, [Gate("vae_psnr_db", 31.2, 28.0)])
    with pytest.raises(RegistryUnavailableError):
        resolve_reference(None, tracking_uri=down, cache_dir=tmp_path)
    with pytest.raises(RegistryUnavailableError, match="unsupported URI"):
        champion_version("nosuchscheme://registry", "videofoundry-dit")
    # Only a registry that answers "not there" means no champion.
    uri, _ = registry
    assert champion_version(uri, "videofoundry-dit") is None
    assert champion_version(uri, "no-such-model") is None
    with pytest.raises(NoChampionError):
        resolve_reference(None, tracking_uri=uri, cache_dir=tmp_path)

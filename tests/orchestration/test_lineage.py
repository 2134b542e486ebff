"""The whole lineage on the demo corpus: raw video → … → champion, reuse on a second run, lineage
tags on every registered model version, and the Dagster webserver's GraphQL showing it all."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import skimage
from mlflow.tracking import MlflowClient

from evaluation.metrics import psnr
from evaluation.vae_benchmarks import reconstruct
from model.checkpoints import load_vae
from orchestration.config import load_config
from orchestration.definitions import build_definitions
from orchestration.runner import run_lineage
from orchestration.workspace import Workspace
from orchestration.workspace_training import vae_export_dir
from serving import ServingConfig, generate
from serving.pipeline import frames_to_uint8, load_image
from ui.demo import DemoBackend, DemoConfig

pytestmark = pytest.mark.slow
PHOTO = Path(skimage.__file__).parent / "data" / "astronaut.png"

QUERY = """{ assetNodes { assetKey { path } isObservable
  assetMaterializations(limit: 1) { metadataEntries { label } }
  assetObservations(limit: 1) { timestamp }
  assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } }"""


@pytest.fixture(scope="module")
def lineage(tmp_path_factory, demo_corpus_dir):
    home = tmp_path_factory.mktemp("lineage") / "home"
    config = load_config(home=home, environ={})
    batch = Workspace.at(home).ensure().raw / "demo"
    batch.mkdir()
    for video in sorted(demo_corpus_dir.glob("*.mp4")):
        (batch / video.name).symlink_to(video)
    defs = build_definitions(config)
    first = run_lineage(defs, config)
    second = run_lineage(defs, config)
    return {"home": home, "config": config, "defs": defs, "first": first, "second": second}


def test_every_asset_materializes_then_a_second_run_reuses_them(lineage):
    first, second = lineage["first"], lineage["second"]
    assert first.success, first.runs
    all_assets = {key.to_user_string() for asset in lineage["defs"].assets for key in asset.keys}
    assert {asset for asset, _, outcome in first.runs if outcome == "ok"} == all_assets
    assert second.success
    rerun = {asset for asset, _, outcome in second.runs if outcome == "ok"}
    # The roots re-observe the world (raw/ and the scaling sweep's runs); nothing downstream changed.
    assert rerun == {"raw_videos", "scaling_sweep_runs"}


def test_registered_versions_name_data_code_config_and_parent(lineage):
    uri = f"sqlite:///{lineage['home'] / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = client.search_model_versions("name='videofoundry-dit'")
    assert versions
    stages = set()
    for version in versions:
        tags = version.tags
        stages.add(tags["stage"])
        assert "dvc:tables/tiers.parquet@" in tags["data_version"]
        assert tags["code_version"] and tags["config_sha"]
        assert "parent_version" in tags
    assert {"image_256", "sft"} <= stages
    sft = max((v for v in versions if v.tags["stage"] == "sft"), key=lambda v: int(v.version))
    assert sft.tags["parent_version"]  # the previous stage's version
    assert "dvc:tables/sft_set.parquet@" in sft.tags["data_version"]
    # The tiny VAE (300 CPU steps on the demo corpus' 15 tier-256p clips) reaches ~15 dB on the real
    # held-out photos, above their mean-colour PSNR (12.9 dB) but short of the floor 3.1 dB over it, so
    # the honest decision is "not promoted", naming the gate and shortfall.
    decision = sft.tags
    assert decision["promotion.decision"] == "rejected", decision["promotion.reason"]
    reason = decision["promotion.reason"]
    assert reason.startswith("failed: vae_psnr_db[heldout_images] ") and "short by " in reason
    assert "no human campaign was run" in reason
    gates = json.loads(decision["promotion.gates"])
    assert {name for name, gate in gates.items() if not gate["passed"]} == {
        "vae_psnr_db[heldout_images]",
        "vae_psnr_db[heldout_clips]",
    }  # every calibrated video gate passes on the tiny DiT's generations
    assert sft.description.startswith("not promoted to @champion: failed: vae_psnr_db")
    assert client.get_registered_model("videofoundry-dit").aliases == {}


def test_the_lineage_model_serves_image_to_video(lineage, tmp_path):
    """The lineage trains I2V (token_replace on half of the video micro-batches), so the SFT model,
    the version `champion` judges, serves the demo's I2V tab: its first frame is the given image."""
    uri = f"sqlite:///{lineage['home'] / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    sft = max(
        (v for v in client.search_model_versions("name='videofoundry-dit'") if v.tags["stage"] == "sft"),
        key=lambda v: int(v.version),
    )
    ref = f"models:/videofoundry-dit/{sft.version}"
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    assert (
        DemoBackend(DemoConfig(model=ref, tracking_uri=uri, serving=serving)).image_to_video_unsupported()
        is None
    )
    settings = {"height": 32, "width": 32, "frames": 5, "steps": 4, "seed": 0}
    made = {
        mode: generate("a photo of a person", image, model=ref, config=serving, tracking_uri=uri, **settings)
        for mode, image in (("i2v", PHOTO), ("t2v", None))
    }
    photo = frames_to_uint8(load_image(PHOTO, 32, 32))[0]
    round_trip = reconstruct(load_vae(vae_export_dir(Workspace.at(lineage["home"]))).eval(), photo)
    i2v, t2v = made["i2v"], made["t2v"]
    assert i2v.metadata["mode"] == "i2v" and i2v.frames.shape == (5, 32, 32, 3)
    # The pinned frame decodes as the photo's VAE round trip (measured 30.9 dB; the later frames' latents
    # still move it a little through the decoder's clip-wide GroupNorm statistics); the T2V video's
    # first frame is unrelated (15.4 dB). Against the photo itself both sit near the tiny VAE's own
    # ~13 dB, too close to tell apart.
    assert psnr(i2v.frames[0], round_trip) > 25.0
    assert psnr(i2v.frames[0], round_trip) > psnr(t2v.frames[0], round_trip) + 10.0


def test_mlflow_holds_one_lineage_run_over_the_stages_and_the_vae_at_current(lineage):
    uri = f"sqlite:///{lineage['home'] / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = {e.name: e for e in client.search_experiments()}
    dit = next(e for name, e in experiments.items() if name.endswith("-dit"))
    assert dit.tags["mlflow.experimentKind"] == "custom_model_development"
    stage_runs = [r for r in client.search_runs([dit.experiment_id]) if "stage" in r.data.tags]
    parents = {r.data.tags.get("mlflow.parentRunId") for r in stage_runs}
    assert len(parents) == 1 and None not in parents  # one parent run, not a chain
    assert all(r.inputs.dataset_inputs for r in stage_runs)
    vae = client.get_registered_model("videofoundry-vae")
    assert set(vae.aliases) == {"current"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_webserver_shows_assets_checks_and_metadata(lineage):
    home, port = lineage["home"], _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home / "dagster"), "VIDEOFOUNDRY_HOME": str(home)}
    web = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen(
        [str(web), "-m", "orchestration.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        body, deadline = None, time.monotonic() + 120
        while body is None and time.monotonic() < deadline:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=json.dumps({"query": QUERY}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = json.loads(response.read())
                # The server answers before its code location has loaded: wait for the assets.
                if answer.get("data", {}).get("assetNodes"):
                    body = answer
                else:
                    time.sleep(1)
            except OSError:
                time.sleep(1)
        assert body is not None, "the webserver did not answer"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in body["data"]["assetNodes"]}
    assert all(
        node["assetObservations"] if node["isObservable"] else node["assetMaterializations"]
        for node in nodes.values()
    ), "an asset shows no materialization (or, for an observable source, no observation)"
    labels = {
        name: {e["label"] for e in n["assetMaterializations"][0]["metadataEntries"]}
        for name, n in nodes.items()
        if not n["isObservable"]
    }
    assert {"funnel_png", "data_version"} <= labels["tiers"]
    assert {"keyframes", "model", "metrics_table", "gates_passed"} <= labels["generations"]
    assert {"sft_recall", "sft_recall_t2v_psnr_db", "sft_recall_i2v_psnr_db"} <= labels["generations"]
    assert {"sft_recall_t2v_mean_colour_baseline_db"} <= labels["generations"]
    assert {"sft_recall_t2v_psnr_vs_vae_roundtrip_db", "sft_recall_t2v_vae_roundtrip_db"} <= labels[
        "generations"
    ]
    assert {"reason", "failed_gates", "metrics_vs_champion"} <= labels["champion"]
    checks = {
        c["name"]: c["executionForLatestMaterialization"]["status"]
        for n in nodes.values()
        for c in n["assetChecksOrError"]["checks"]
    }
    assert checks["every_tier_clip_has_a_valid_caption"] == "SUCCEEDED"
    for name in ("raw_videos_expectations", "clips_expectations", "tiers_expectations", "dit_sft_checkpoint"):
        assert checks[name] == "SUCCEEDED", name
    assert checks["vae_psnr_floor"] == "FAILED"  # reported, not blocking: champion records the rejection

"""The whole stage manifest on the CPU tiny profile, with MLflow and the model registry (slow).

One module-scoped run: image_256 → image_mixscale → video_low_short → video_low_long →
video_high_long → sft on four synthetic clips; the SFT stage overfits them, so sampling a clip's
prompt must come out closer to that clip than to the other three.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from safetensors.torch import load_file

from model.checkpoints import load_transformer
from tests.training.dit.fixtures import own_clip_scores, write_clips
from training.dit.config import STAGE_ORDER, DiTTrainConfig
from training.dit.registry import REGISTERED_MODEL
from training.dit.run import train_dit_stage
from training.dit.stages import finished_stage, prepare_stage
from training.tracking import TrackingSettings, default_tracking_uri

pytestmark = pytest.mark.slow

# Bars measured over training seeds 0-7 (benchmarks/learning_margins.py, 2-core Xeon, one thread):
# sft/image_256 loss 0.082-0.116, worst latent margin 6.0-10.1 dB, pixel margin 2.5-4.3 dB.
MAX_LOSS_RATIO, MIN_LATENT_MARGIN_DB, MIN_PIXEL_MARGIN_DB = 0.25, 3.0, 1.0


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dit_chain")
    records = write_clips(root / "clips")
    config = DiTTrainConfig.preset("tiny")
    uri, artifacts = default_tracking_uri(root / "home")
    tracking = TrackingSettings(uri=uri, artifact_location=artifacts, data_version="test:clips@v1")
    results = {}
    for stage in STAGE_ORDER:  # in this process: the tiny profile has one worker and no ZeRO
        plan = prepare_stage(
            config, stage, records, root / "ckpt", root / "latents", tracking, progress=False
        )
        results[stage] = train_dit_stage(plan)
    yield {"root": root, "records": records, "config": config, "uri": uri, "results": results}
    torch.set_num_threads(threads)


def test_every_stage_runs_in_order_from_the_previous_checkpoint(chain):
    config, root, results = chain["config"], chain["root"], chain["results"]
    for index, stage in enumerate(STAGE_ORDER):
        result = results[stage]
        assert result.name == stage and result.world_size == 1
        assert result.steps_done == config.stage(stage).steps and result.checkpoint is not None
        plan = json.loads((root / "ckpt" / stage / "plan.json").read_text())
        if index:
            assert plan["init_from"] == str(results[STAGE_ORDER[index - 1]].checkpoint)
        else:
            assert plan["init_from"] is None
        finished = finished_stage(root / "ckpt", stage)
        assert finished is not None and finished.checkpoint == result.checkpoint
        assert finished.run_id == result.run_id and finished.loss == pytest.approx(result.final_loss)
    # image_mixscale trains both scales in every step; video stages mix images in.
    assert set(results["image_mixscale"].bucket_losses) == {
        "r32_1x1_f1_32x32",
        "r32_16x9_f1_32x48",
        "r64_16x9_f1_48x80",
    } or {b.split("_")[0] for b in results["image_mixscale"].bucket_losses} == {"r32", "r64"}
    assert any("_f1_" in b for b in results["video_low_long"].bucket_losses)
    assert any("_f9_" in b for b in results["video_low_long"].bucket_losses)
    assert results["sft"].final_loss < MAX_LOSS_RATIO * results["image_256"].final_loss


def test_stage_runs_are_children_of_one_lineage_run_on_a_global_step(chain):
    client = MlflowClient(chain["uri"])
    config, results = chain["config"], chain["results"]
    parents, previous_run, offset = set(), "", 0
    for stage in STAGE_ORDER:
        run = client.get_run(results[stage].run_id)
        assert run.data.tags["stage"] == stage and run.info.status == "FINISHED"
        assert run.data.tags["previous_stage_run"] == previous_run
        parents.add(run.data.tags["mlflow.parentRunId"])
        assert "loss" in run.data.metrics and "grad_norm" in run.data.metrics
        assert run.data.params["train.seed"] == str(config.seed) and run.data.params["stage.name"] == stage
        [dataset] = run.inputs.dataset_inputs
        assert dataset.dataset.digest == "test:clips@v1"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
        assert min(steps) > offset and max(steps) == offset + results[stage].steps_done
        images = {a.path for a in client.list_artifacts(run.info.run_id, "images")}
        assert any(p.startswith("images/loss_per_bucket+step+") for p in images)
        videos = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
        assert len(videos) == 2 and all(v.endswith(".mp4") for v in videos)
        # Each checkpoint is a LoggedModel output of the run at its global step.
        outputs = sorted(o.step for o in run.outputs.model_outputs)
        assert outputs[-1] == offset + results[stage].steps_done
        previous_run, offset = run.info.run_id, offset + config.stage(stage).steps
    [parent] = parents
    lineage = client.get_run(parent)
    assert lineage.info.status == "FINISHED" and lineage.data.tags["videofoundry.lineage"] == "true"
    curve = [m.step for m in client.get_metric_history(parent, "loss")]
    assert curve == sorted(curve) and curve[-1] == offset  # one curve over all the stages


def test_each_checkpoint_is_a_registered_version_with_lineage_tags(chain):
    client = MlflowClient(chain["uri"], registry_uri=chain["uri"])
    results = chain["results"]
    versions = {v.version: v for v in client.search_model_versions(f"name='{REGISTERED_MODEL}'")}
    assert len(versions) == sum(len(r.model_versions) for r in results.values())
    assert len(results["sft"].model_versions) == 3  # checkpoints at 100, 200, 300
    parent = ""
    for stage in STAGE_ORDER:
        for number in results[stage].model_versions:
            tags = client.get_model_version(REGISTERED_MODEL, number).tags
            assert tags["stage"] == stage and tags["data_version"] == "test:clips@v1"
            assert len(tags["code_version"].removesuffix("-dirty")) == 40
            assert len(tags["config_sha"]) == 16 and tags["model_id"].startswith("m-")
            assert tags["parent_version"] == parent
        assert (
            client.get_model_version(REGISTERED_MODEL, results[stage].model_version).tags["final"] == "true"
        )
        parent = results[stage].model_version
    # The version's source is a loadable transformer (EMA weights in model.checkpoints format).
    final = results["sft"].checkpoint
    model = load_transformer(final / "transformer")
    assert torch.equal(
        model.state_dict()["img_in.proj.weight"],
        load_file(str(final / "ema.safetensors"))["img_in.proj.weight"],
    )


def test_sft_overfits_so_a_training_prompt_reconstructs_its_own_clip(chain):
    """PSNR(sample of prompt i, clip i) vs PSNR(sample of prompt i, clip j ≠ i), latent and decoded.

    Latent space is the real test: the stand-in VAE is untrained, so its decoder maps small latent
    errors to large pixel errors and decoded PSNRs are low overall (they still must favour the own
    clip on average). The numbers are printed for the report.
    """
    config, root, records = chain["config"], chain["root"], chain["records"]
    checkpoint = chain["results"]["sft"].checkpoint
    scores = own_clip_scores(checkpoint, config, records, root / "latents", seed=123)
    for record, own, other in zip(records, scores.own_latent, scores.best_other_latent, strict=True):
        print(f"{record.clip_id}: latent PSNR own {own:.2f} dB, best other {other:.2f} dB")
    print(
        f"decoded PSNR: own mean {np.mean(scores.own_pixel):.2f} dB, "
        f"others mean {np.mean(scores.other_pixel):.2f} dB"
    )
    # Every prompt lands nearest to its own clip, by a margin.
    assert scores.latent_margins.min() > MIN_LATENT_MARGIN_DB, scores.latent_margins
    assert scores.pixel_margin > MIN_PIXEL_MARGIN_DB


def test_a_registered_sft_version_is_a_bundle_that_serving_generates_from(chain, tmp_path):
    from serving import ServingConfig, generate

    version = chain["results"]["sft"].model_version
    bundle = chain["results"]["sft"].checkpoint
    meta = json.loads((bundle / "pipeline.json").read_text())
    assert meta["format"] == "videofoundry-pipeline/1" and meta["info"]["stage"] == "sft"
    assert meta["text_encoder"]["config"]["max_length"] == chain["config"].text_max_length
    video = generate(
        chain["records"][0].prompt,
        model=f"models:/{REGISTERED_MODEL}/{version}",
        tracking_uri=chain["uri"],
        config=ServingConfig(cache_dir=str(tmp_path / "cache")),
        height=32,
        width=32,
        frames=5,
        steps=2,
        seed=0,
    )
    assert video.frames.shape == (5, 32, 32, 3)
    assert str(version) in video.metadata["model_version"]

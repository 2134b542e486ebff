"""A registered checkpoint is an MLflow model: its pyfunc flavor loads through `models:/…@champion`
and predicts videos, and serving's own loader reads the same version's bundle (real SQLite store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from media.video import read_clip
from model.bundle import PIPELINE_FILE
from serving import ServingConfig, build_tiny_random, generate, resolve_reference, save_pipeline
from training.logged_models import (
    BUNDLE_DIR,
    PIPELINE_FACE,
    PYFUNC_LOADER,
    log_checkpoint_model,
    register_logged_model,
)
from training.tracking import RunTracker

NAME = "videofoundry-dit"
ROW = {
    "prompt": ["a red ball"],
    "num_frames": [5],
    "height": [32],
    "width": [32],
    "num_inference_steps": [2],
    "seed": [3],
}


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("pyfunc")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    transformer, vae, _ = build_tiny_random(seed=7)
    bundle = save_pipeline(root / "ckpt" / "step_2", transformer, vae, "tiny-random", fps=12)
    tracker = RunTracker(uri, "pyfunc-test", artifact_location=root / "art")
    assert tracker.run_id is not None and tracker.experiment_id is not None
    parts = {p.name: p for p in sorted(bundle.iterdir())}
    model_id = log_checkpoint_model(
        tracker.client, tracker.experiment_id, tracker.run_id, name="dit-sft-step2", step=2,
        parts=parts, params={"stage": "sft", "dit": {"depth": 2}}, tags={"stage": "sft"}, pyfunc=PIPELINE_FACE,
    )  # fmt: skip
    tracker.log_metrics({"loss": 0.25}, 2, model_id=model_id)
    tracker.finish()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = register_logged_model(client, NAME, model_id, tracker.run_id, {"stage": "sft"}, "test")
    client.set_registered_model_alias(NAME, "champion", version)
    return {"uri": uri, "bundle": bundle, "model_id": model_id, "run_id": tracker.run_id, "root": root}


def test_the_logged_model_holds_the_bundle_unchanged_beside_a_pyfunc_mlmodel(champion) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=champion["uri"])
    model = client.get_logged_model(champion["model_id"])
    assert model.source_run_id == champion["run_id"] and model.status.to_proto() == 2  # READY
    assert model.params["dit.depth"] == "2" and model.metrics and model.metrics[0].value == 0.25
    run = client.get_run(champion["run_id"])
    assert [(o.model_id, o.step) for o in run.outputs.model_outputs] == [(champion["model_id"], 2)]
    folder = Path(model.artifact_location.removeprefix("file://"))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == PYFUNC_LOADER and pyfunc["data"] == BUNDLE_DIR
    assert "prompt" in mlmodel["signature"]["inputs"] and "output_dir" in mlmodel["signature"]["params"]
    assert (folder / "input_example.json").is_file()
    source, logged = Path(champion["bundle"]), folder / BUNDLE_DIR
    for path in source.rglob("*"):
        if path.is_file():
            assert (logged / path.relative_to(source)).read_bytes() == path.read_bytes()


def test_pyfunc_load_model_at_champion_predicts_the_same_video_as_serving(champion, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(champion["uri"])  # the registry follows it (as in test_registry)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    out = model.predict(
        pd.DataFrame(ROW), params={"output_dir": str(tmp_path / "out"), "return_frames": True}
    )
    assert list(out["video_path"]) == [str(tmp_path / "out" / "video_0000.mp4")]
    frames = out["frames"][0]
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
    assert read_clip(out["video_path"][0]).shape == (5, 32, 32, 3)

    config = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    source = resolve_reference(
        f"models:/{NAME}@champion", tracking_uri=champion["uri"], cache_dir=config.cache_dir
    )
    assert source.local_path is not None and (source.local_path / PIPELINE_FILE).is_file()
    assert champion["model_id"] in source.details["source"]
    video = generate(
        "a red ball", model=f"models:/{NAME}@champion", tracking_uri=champion["uri"], config=config,
        num_frames=5, height=32, width=32, num_inference_steps=2, seed=3,
    )  # fmt: skip
    np.testing.assert_array_equal(video.frames, frames)


def test_predict_rejects_rows_without_a_prompt(champion) -> None:
    from serving.limits import InvalidRequestError
    from serving.mlflow_model import VideoPipelineModel

    model = VideoPipelineModel(Path(champion["bundle"]))
    with pytest.raises(InvalidRequestError, match="no 'prompt' column"):
        model.predict(pd.DataFrame({"text": ["x"]}))
    with pytest.raises(InvalidRequestError, match="unknown predict columns"):
        model.predict({"prompt": "x", "fps": 3})

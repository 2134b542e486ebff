"""A registered VAE is an MLflow model: `models:/videofoundry-vae@current` loads through its pyfunc
flavor and reconstructs a video or an image with the benchmark protocol (real SQLite store)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from evaluation.metrics import frame_psnr
from evaluation.vae_benchmarks import reconstruct
from media.video import read_clip, write_video
from model.checkpoints import save_model
from model.vae import CausalVAE3D, VAEConfig
from serving.limits import InvalidRequestError
from training.logged_models import VAE_FACE, log_checkpoint_model, register_logged_model
from training.tracking import RunTracker
from training.vae.registry import REGISTERED_VAE, VAE_ALIAS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("vae_pyfunc")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    torch.manual_seed(0)
    vae = CausalVAE3D(VAEConfig.preset("tiny")).eval()
    export = save_model(vae, root / "export")
    tracker = RunTracker(uri, "vae-pyfunc-test", artifact_location=root / "art")
    assert tracker.run_id is not None and tracker.experiment_id is not None
    model_id = log_checkpoint_model(
        tracker.client, tracker.experiment_id, tracker.run_id, name="vae-step3", step=3,
        parts={".": export}, params={"step": 3}, tags={}, pyfunc=VAE_FACE, model_type="videofoundry-vae",
    )  # fmt: skip
    tracker.finish()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = register_logged_model(client, REGISTERED_VAE, model_id, tracker.run_id, {"step": "3"}, "test")
    client.set_registered_model_alias(REGISTERED_VAE, VAE_ALIAS, version)

    rng = np.random.default_rng(0)
    base = cv2.resize(
        rng.integers(0, 256, (12, 20, 3), dtype=np.uint8), (100, 60), interpolation=cv2.INTER_CUBIC
    )
    frames = np.stack([np.roll(base, 2 * t, axis=1) for t in range(11)])  # 11 frames, 100×60
    video = root / "pan.mp4"
    write_video(video, frames, fps=24, crf=18)
    image = root / "still.png"
    cv2.imwrite(str(image), cv2.cvtColor(base, cv2.COLOR_RGB2BGR))
    return {"uri": uri, "vae": vae, "model_id": model_id, "video": video, "image": image}


def test_the_vae_version_carries_a_pyfunc_mlmodel_naming_the_evaluation_loader(registered) -> None:
    from mlflow.tracking import MlflowClient

    model = MlflowClient(tracking_uri=registered["uri"]).get_logged_model(registered["model_id"])
    folder = Path(model.artifact_location.removeprefix("file://"))
    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "evaluation.mlflow_vae"
    assert "media_path" in mlmodel["signature"]["inputs"] and "psnr" in mlmodel["signature"]["outputs"]
    assert (folder / "bundle" / "config.json").is_file()


def test_pyfunc_at_current_reconstructs_with_the_benchmark_protocol(registered, tmp_path: Path) -> None:
    import mlflow

    mlflow.set_tracking_uri(registered["uri"])
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_VAE}@{VAE_ALIAS}")
    rows = pd.DataFrame(
        {"media_path": [str(registered["video"]), str(registered["image"])], "num_frames": [7, 33]}
    )
    out = model.predict(rows, params={"output_dir": str(tmp_path / "recon")})
    assert list(out.columns) == ["psnr", "frames", "height", "width", "output_path"]
    # 7 asked → 5 (4k + 1); 100×60 → centre crop 96×48 (multiples of 16); the image is one frame.
    assert out[["frames", "height", "width"]].values.tolist() == [[5, 48, 96], [1, 48, 96]]
    source = read_clip(registered["video"], 0, 5)[:, 6:54, 2:98]
    expected = float(frame_psnr(source, reconstruct(registered["vae"], source)).mean())
    assert out["psnr"][0] == pytest.approx(expected, abs=1e-6)
    written = read_clip(out["output_path"][0])
    assert written.shape == (5, 48, 96, 3)
    assert 0 < out["psnr"][1] < 60 and Path(out["output_path"][1]).is_file()


def test_pyfunc_rejects_bad_rows_naming_the_row_and_the_file(registered, tmp_path: Path) -> None:
    from evaluation.mlflow_vae import VAEReconstructionModel, _load_pyfunc

    model = _load_pyfunc(str(Path(registered["video"]).parent / "export"))
    assert isinstance(model, VAEReconstructionModel)
    with pytest.raises(InvalidRequestError, match=r"row 0: media_path .*missing\.mp4 is not a file"):
        model.predict(pd.DataFrame({"media_path": [str(tmp_path / "missing.mp4")]}))
    with pytest.raises(InvalidRequestError, match="row 0: .* start_frame 40 is past its end"):
        model.predict(pd.DataFrame({"media_path": [str(registered["video"])], "start_frame": [40]}))
    with pytest.raises(InvalidRequestError, match="unknown predict columns \\['prompt'\\]"):
        model.predict(pd.DataFrame({"media_path": ["x"], "prompt": ["a cat"]}))
    with pytest.raises(InvalidRequestError, match="row 0: num_frames must be an integer ≥ 1"):
        model.predict(pd.DataFrame({"media_path": [str(registered["video"])], "num_frames": [0]}))
    with pytest.raises(InvalidRequestError, match="row 0: height must be an integer ≥ 16, got 'tall'"):
        model.predict({"media_path": str(registered["video"]), "height": "tall"})

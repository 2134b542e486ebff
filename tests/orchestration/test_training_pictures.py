"""A training run's pictures on its asset page: the loss curve read back from the MLflow run,
the held-out curves, the DiT per-bucket plot."""

from __future__ import annotations

import math
from pathlib import Path

from mlflow.tracking import MlflowClient
from PIL import Image

from orchestration.inline_charts import INLINE_MARKDOWN_LIMIT
from orchestration.metadata import loss_history, train_result_metadata
from training.results import TrainResult


def test_loss_curve_from_mlflow_heldout_curves_and_bucket_plot(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("t", artifact_location=str(tmp_path / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    for step in range(1, 31):
        client.log_metric(run_id, "loss", 1.0 / step, step=step)
    client.set_terminated(run_id)
    checkpoint = tmp_path / "ckpt" / "step_0000030"
    (checkpoint.parent / "plots").mkdir(parents=True)
    Image.new("RGB", (64, 32), (200, 30, 30)).save(checkpoint.parent / "plots" / "loss_per_bucket.png")
    result = TrainResult(
        "image_256", 30, 0, checkpoint, run_id=run_id, final_loss=0.04,
        evals=({"step": 10.0, "psnr_image": 14.0}, {"step": 30.0, "psnr_image": 19.5}),
    )  # fmt: skip

    assert loss_history(uri, run_id)[:2] == [(1.0, 1.0), (2.0, 0.5)] and len(loss_history(uri, run_id)) == 30
    metadata = train_result_metadata(result, uri)
    for key in ("loss_curve", "heldout_psnr_image_curve"):
        text = metadata[key].value
        assert isinstance(text, str) and text.startswith("![") and len(text) < INLINE_MARKDOWN_LIMIT
    assert "data:image/png;base64," in str(metadata["loss_per_bucket"].value)
    # No tracking store (or no run): the numbers stay, the curve is left out rather than failing.
    bare = train_result_metadata(TrainResult("vae", 5, 0, None, final_loss=math.nan))
    assert "loss_curve" not in bare and "steps" in bare
    assert loss_history(uri, "0" * 32) == []

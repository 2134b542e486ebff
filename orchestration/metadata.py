"""Asset metadata for the Dagster UI: PNGs embedded in metadata, keyframe grids of videos, and
the summary of a training run.

Dagster renders Markdown metadata, including images given as data URIs, so a funnel chart or a
keyframe grid shows on the asset's page without a file server: in place when the Markdown is under
1,000 characters (orchestration.inline_charts), behind a "[Show Markdown]" link otherwise.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from media.video import VideoReader
from orchestration.inline_charts import line_chart
from training.results import TrainResult

MAX_EMBED_BYTES = 2_000_000  # Dagster stores metadata in its event log: keep embedded images small


def image_metadata(png: Path, alt: str | None = None) -> dg.MetadataValue:
    """The PNG at `png` as Markdown metadata (a data URI), plus its path below it."""
    data = png.read_bytes()
    if len(data) > MAX_EMBED_BYTES:
        return dg.MetadataValue.md(f"image too large to embed ({len(data)} bytes): `{png}`")
    encoded = base64.b64encode(data).decode()
    return dg.MetadataValue.md(f"![{alt or png.stem}](data:image/png;base64,{encoded})\n\n`{png}`")


def _middle_frame(path: str | Path, height: int) -> np.ndarray:
    """The middle frame of the video at `path`, `height` rows high; decoded alone (after a seek)."""
    with VideoReader(path) as reader:
        middle = reader.frame_count // 2
        width, source_height = reader.size
        return reader.read(middle, middle + 1, (max(1, round(width * height / source_height)), height))[0]


def keyframe_grid(videos: Sequence[str | Path], out: Path, columns: int = 4, height: int = 96) -> Path:
    """A grid of the middle frame of each video (row-major, at most 32), written to `out` as PNG."""
    tiles = [_middle_frame(v, height) for v in list(videos)[:32]]
    if not tiles:
        raise ValueError("keyframe_grid needs at least one video")
    width = max(t.shape[1] for t in tiles)
    rows = -(-len(tiles) // columns)
    canvas = np.zeros((rows * height, min(columns, len(tiles)) * width, 3), dtype=np.uint8)
    for index, tile in enumerate(tiles):
        r, c = divmod(index, columns)
        canvas[r * height : (r + 1) * height, c * width : c * width + tile.shape[1]] = tile
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    Image.fromarray(canvas).save(tmp)
    tmp.replace(out)
    return out


def train_result_metadata(
    result: TrainResult, tracking_uri: str | None = None
) -> dict[str, dg.MetadataValue]:
    """A training run on an asset's page: steps, loss, speed, MLflow run, checkpoint, data version;
    plus the last held-out evaluation (`heldout_<metric>`, VAE) and the registered version and
    per-bucket losses (DiT) when the run has them, and its pictures (`training_pictures`)."""
    metadata: dict[str, dg.MetadataValue] = {
        "steps": dg.MetadataValue.int(result.steps_done),
        "final_loss": dg.MetadataValue.float(result.final_loss),
        "samples_per_second": dg.MetadataValue.float(result.samples_per_second),
        "mlflow_run_id": dg.MetadataValue.text(str(result.run_id)),
        "checkpoint": dg.MetadataValue.path(str(result.checkpoint)),
        "data_version": dg.MetadataValue.text(result.data_version),
    }
    if result.evals:
        last = result.evals[-1]
        metadata |= {f"heldout_{k}": dg.MetadataValue.float(float(v)) for k, v in last.items() if k != "step"}
    if result.model_version is not None:
        metadata["model_version"] = dg.MetadataValue.text(result.model_version)
    if result.bucket_losses:
        metadata["bucket_losses"] = dg.MetadataValue.json(result.bucket_losses)
    return metadata | training_pictures(result, tracking_uri)


def loss_history(
    tracking_uri: str | None, run_id: str | None, key: str = "loss"
) -> list[tuple[float, float]]:
    """(step, value) of the metric `key` the MLflow run logged, in step order; [] when there is no
    run, no such metric, or the tracking store cannot be read."""
    if tracking_uri is None or run_id is None:
        return []
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        history = MlflowClient(tracking_uri=tracking_uri).get_metric_history(run_id, key)
    except MlflowException:
        return []
    return sorted((float(m.step), float(m.value)) for m in history)


def training_pictures(result: TrainResult, tracking_uri: str | None) -> dict[str, dg.MetadataValue]:
    """The run's curves on the asset page: `loss_curve` (inline, from the MLflow run's `loss`
    history), `heldout_<metric>_curve` per held-out metric (inline, VAE), and `loss_per_bucket` (the DiT trainer's plot,
    written next to its checkpoints); each only when there is something to draw."""
    pictures: dict[str, dg.MetadataValue] = {}
    losses = loss_history(tracking_uri, result.run_id)
    if len(losses) >= 2:
        pictures["loss_curve"] = line_chart(losses, f"{result.name} training loss by step")
    for metric in sorted({key for row in result.evals for key in row} - {"step"}):
        curve = [(row["step"], row[metric]) for row in result.evals if metric in row]
        if len(curve) >= 2:
            pictures[f"heldout_{metric}_curve"] = line_chart(
                curve, f"{result.name} held-out {metric} by step"
            )
    plot = result.checkpoint.parent / "plots" / "loss_per_bucket.png" if result.checkpoint else None
    if plot is not None and plot.is_file():
        pictures["loss_per_bucket"] = image_metadata(plot, f"{result.name} loss per bucket")
    return pictures

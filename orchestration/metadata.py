"""Asset metadata for the Dagster UI: PNGs embedded in metadata, keyframe grids of videos, and
the summary of a training run.

Dagster renders Markdown metadata, including images given as data URIs, so a funnel chart or a
keyframe grid shows on the asset's page without a file server.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
import numpy as np
from PIL import Image

from media.video import VideoReader
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


def train_result_metadata(result: TrainResult) -> dict[str, dg.MetadataValue]:
    """A training run on an asset's page: steps, loss, speed, MLflow run, checkpoint, data version;
    plus the last held-out evaluation (`heldout_<metric>`, VAE) and the registered version and
    per-bucket losses (DiT) when the run has them."""
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
    return metadata

"""The MLflow pyfunc face of a registered VAE: `mlflow.pyfunc.load_model("models:/videofoundry-vae@current")`.

A registered VAE version is a LoggedModel whose MLmodel names this module as the pyfunc
`loader_module` and its `bundle/` folder (the `model.checkpoints` export: safetensors +
config.json) as data (`training.vae.registry` writes it). `predict` reconstructs media through that
VAE with the protocol of `evaluation.vae_benchmarks.reconstruct` (posterior mean, uint8 round trip)
and reports the PSNR, so a version can be checked on one's own footage without the platform:

    vae = mlflow.pyfunc.load_model("models:/videofoundry-vae@current")
    out = vae.predict(pd.DataFrame({"media_path": ["clip.mp4"], "num_frames": [17]}),
                      params={"output_dir": "recon"})     # out["psnr"][0] in dB; out["output_path"][0] an mp4

Rows: `media_path` (required: a video, or an image read as one frame), and optionally
`start_frame` (default 0), `num_frames` (default 33, MCL-JCV's; cut to the frames the file has and
then to 4k + 1, the causal VAE's lengths), `height` and `width` (default the file's size; the frames
are resized, then centre-cropped to multiples of 16 so that every video writes as H.264). Params:
`output_dir` (default "": nothing written; else one `<row>_<name>.mp4` of the reconstruction per
row). Output: one row per input with `psnr` (dB, mean over frames), `frames`, `height`, `width` and
`output_path` ("" when nothing was written). A missing or unreadable file, an unknown column or a
bad number raises `InvalidRequestError` naming the row and the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from evaluation.metrics import frame_psnr
from evaluation.vae_benchmarks import reconstruct
from media.video import VideoReader, VideoReadError
from serving.limits import InvalidRequestError
from serving.mlflow_model import input_rows

OPTIONAL_COLUMNS = ("start_frame", "num_frames", "height", "width")
DEFAULT_FRAMES = 33
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
ALIGN = 16  # spatial multiple: the VAE needs 8, H.264 in yuv420p needs even sizes; 16 keeps both


class VAEReconstructionModel(PythonModel):
    """Reconstructs each row's media through the VAE at `vae_dir` (see module docstring)."""

    def __init__(self, vae_dir: str | Path | None = None) -> None:
        self.vae_dir = Path(vae_dir) if vae_dir is not None else None
        self._vae: Any = None

    def load_context(self, context: Any) -> None:
        self.vae_dir = Path(context.artifacts["bundle"])

    def _model(self) -> Any:
        if self._vae is None:
            from model.checkpoints import load_vae

            if self.vae_dir is None:
                raise InvalidRequestError("VAEReconstructionModel has no VAE: load it through mlflow.pyfunc")
            self._vae = load_vae(self.vae_dir).eval()
        return self._vae

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:  # type: ignore[override]
        """A DataFrame (or a dict of columns, or a list of paths) → one row per input: psnr, frames, height, width, output_path."""
        rows = input_rows(model_input, "media_path", OPTIONAL_COLUMNS)
        output_dir = str((params or {}).get("output_dir") or "")
        results = []
        for index, row in enumerate(rows.to_dict("records")):
            media = _read(index, row)
            recon = reconstruct(self._model(), media)
            path = ""
            if output_dir:
                path = str(
                    _write(recon, Path(output_dir) / f"{index:04d}_{Path(row['media_path']).stem}.mp4")
                )
            frames, height, width = media.shape[:3]
            psnr = float(frame_psnr(media, recon).mean())
            results.append(
                {"psnr": psnr, "frames": frames, "height": height, "width": width, "output_path": path}
            )
        return pd.DataFrame(results, columns=["psnr", "frames", "height", "width", "output_path"])


def _given(index: int, row: dict[str, Any], name: str, default: int | None, minimum: int) -> int | None:
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not number.is_integer() or number < minimum:
        raise InvalidRequestError(f"row {index}: {name} must be an integer ≥ {minimum}, got {value!r}")
    return int(number)


def _read(index: int, row: dict[str, Any]) -> np.ndarray:
    """The row's frames, (T, H, W, 3) uint8: T = 4k + 1, H and W multiples of ALIGN."""
    path = Path(str(row["media_path"]))
    start = _given(index, row, "start_frame", 0, 0) or 0
    wanted = _given(index, row, "num_frames", DEFAULT_FRAMES, 1) or DEFAULT_FRAMES
    height, width = _given(index, row, "height", None, ALIGN), _given(index, row, "width", None, ALIGN)
    if not path.is_file():
        raise InvalidRequestError(f"row {index}: media_path {path} is not a file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InvalidRequestError(f"row {index}: {path} is not a readable image")
        frames = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[None]
    else:
        try:
            with VideoReader(path) as reader:
                available = reader.frame_count - start
                if available < 1:
                    raise InvalidRequestError(
                        f"row {index}: {path} has {reader.frame_count} frames; start_frame {start} is past its end"
                    )
                count = (min(wanted, available) - 1) // 4 * 4 + 1
                frames = reader.read(start, start + count)
        except VideoReadError as error:
            raise InvalidRequestError(f"row {index}: {error}") from error
    if height is not None or width is not None:
        h0, w0 = frames.shape[1:3]
        size = (width or round(w0 * height / h0), height or round(h0 * width / w0))  # type: ignore[operator]
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    h, w = frames.shape[1] // ALIGN * ALIGN, frames.shape[2] // ALIGN * ALIGN
    if h == 0 or w == 0:
        raise InvalidRequestError(
            f"row {index}: {path} is {frames.shape[2]}×{frames.shape[1]}, under {ALIGN} px"
        )
    top, left = (frames.shape[1] - h) // 2, (frames.shape[2] - w) // 2
    return np.ascontiguousarray(frames[:, top : top + h, left : left + w])


def _write(frames: np.ndarray, path: Path) -> Path:
    from media.video import write_video

    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps=24, crf=18)
    return path


def _load_pyfunc(data_path: str) -> VAEReconstructionModel:
    """MLflow's loader hook: `data_path` is the model's `bundle/` folder (the VAE export)."""
    return VAEReconstructionModel(data_path)

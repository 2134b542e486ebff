"""The MLflow pyfunc face of a pipeline bundle: `mlflow.pyfunc.load_model("models:/…@champion")`.

A registered DiT version is a LoggedModel whose MLmodel names this module as the pyfunc
`loader_module` and its `bundle/` folder as data (`training.logged_models` writes it). MLflow calls
`_load_pyfunc(<model>/bundle)`; the `VideoPipelineModel` it returns predicts with `serving.generate`
on that bundle:

    model = mlflow.pyfunc.load_model("models:/videofoundry-dit@champion")
    out = model.predict(pd.DataFrame({"prompt": ["a cat"], "num_frames": [9]}),
                        params={"output_dir": "videos"})      # out["video_path"][0] is an mp4

Rows: `prompt` (required), and optionally `negative_prompt`, `num_frames`, `height`, `width`,
`num_inference_steps`, `guidance_scale`, `seed` (missing or null: the bundle's defaults). Params:
`output_dir` (default: a new temporary folder) and `return_frames` (adds a `frames` column of
(F, H, W, 3) uint8 arrays). The same class works as a PythonModel logged with
`artifacts={"bundle": <bundle folder>}`.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from serving.limits import InvalidRequestError

SETTING_COLUMNS = (
    "negative_prompt",
    "num_frames",
    "height",
    "width",
    "num_inference_steps",
    "guidance_scale",
    "seed",
)
_INTEGERS = {"num_frames", "height", "width", "num_inference_steps", "seed"}


class VideoPipelineModel(PythonModel):
    """Generates one video per input row from the bundle at `bundle` (see module docstring)."""

    def __init__(self, bundle: str | Path | None = None) -> None:
        self.bundle = Path(bundle) if bundle is not None else None

    def load_context(self, context: Any) -> None:
        self.bundle = Path(context.artifacts["bundle"])

    # MLflow 3 calls a predict without `context` as predict(model_input, params): no context needed.
    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:  # type: ignore[override]
        """A DataFrame (or a dict of columns, or a list of prompts) → one row per prompt with the
        `video_path` of its mp4 (and `frames` with `return_frames`). Bad rows raise InvalidRequestError."""
        from serving.api import generate
        from serving.video import write_mp4

        if self.bundle is None:
            raise InvalidRequestError("VideoPipelineModel has no bundle: load it through mlflow.pyfunc")
        rows = input_rows(model_input, "prompt", SETTING_COLUMNS)
        params = params or {}
        output = Path(params.get("output_dir") or tempfile.mkdtemp(prefix="videofoundry-pyfunc-"))
        output.mkdir(parents=True, exist_ok=True)
        paths, frames = [], []
        for index, row in enumerate(rows.to_dict("records")):
            video = generate(str(row["prompt"]), model=str(self.bundle), **_settings(row))
            path = write_mp4(video, output / f"video_{index:04d}.mp4", thumbnail=False)
            paths.append(str(path))
            frames.append(video.frames)
        result = pd.DataFrame({"video_path": paths})
        if params.get("return_frames"):
            result["frames"] = frames
        return result


def input_rows(model_input: Any, required: str, optional: Sequence[str]) -> pd.DataFrame:
    """A pyfunc `predict` input as a DataFrame with the `required` column and no column outside
    `optional`: a DataFrame, a dict of columns (scalars are one row), or a list of strings (the
    `required` column). Anything else raises InvalidRequestError naming what is wrong."""
    if isinstance(model_input, pd.DataFrame):
        rows = model_input
    elif isinstance(model_input, dict):
        rows = pd.DataFrame({k: v if isinstance(v, list | tuple) else [v] for k, v in model_input.items()})
    elif isinstance(model_input, list | tuple) and all(isinstance(p, str) for p in model_input):
        rows = pd.DataFrame({required: list(model_input)})
    else:
        raise InvalidRequestError(
            f"predict takes a DataFrame or dict with a {required!r} column, or a list of strings; "
            f"got {type(model_input).__name__}"
        )
    if required not in rows.columns:
        raise InvalidRequestError(f"predict input has no {required!r} column (columns: {list(rows.columns)})")
    unknown = sorted(set(rows.columns) - {required, *optional})
    if unknown:
        raise InvalidRequestError(f"unknown predict columns {unknown}; use {[required, *optional]}")
    return rows


def _settings(row: dict[str, Any]) -> dict[str, Any]:
    """The row's given settings as `serving.generate` keywords (nulls left to the defaults)."""
    given = {}
    for name in SETTING_COLUMNS:
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        given[name] = int(value) if name in _INTEGERS else value
    return given


def _load_pyfunc(data_path: str) -> VideoPipelineModel:
    """MLflow's loader hook: `data_path` is the model's `bundle/` folder."""
    return VideoPipelineModel(data_path)

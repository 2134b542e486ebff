"""MLflow 3 LoggedModels for checkpoints, and the registry versions made from them.

A checkpoint becomes one LoggedModel of its run (`log_checkpoint_model`): created with the run as
source, recorded as the run's output at its step (so the run page lists the checkpoint at that
step, and metrics logged with its `model_id` show on the model's page), its files under `bundle/`
exactly as the checkpoint holds them, and — for a pipeline bundle — an MLmodel file with the
`python_function` flavor, a signature and an input example:

    <logged model artifacts>/
      MLmodel                 python_function: loader_module serving.mlflow_model, data: bundle
      input_example.json, serving_input_example.json, requirements.txt, python_env.yaml, conda.yaml
      bundle/                 the pipeline bundle (transformer/, vae/, pipeline.json), unchanged

`mlflow.pyfunc.load_model("models:/videofoundry-dit@champion")` then imports `serving.mlflow_model`
(named in the MLmodel; training does not import serving) and predicts videos from prompts; serving's
own loader (`serving.references`) reads `bundle/` as before. `register_logged_model` creates the
registry version linked to the LoggedModel (`model_id`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.tracking import flatten_params

PYFUNC_LOADER = "serving.mlflow_model"  # the module `mlflow.pyfunc.load_model` imports (a name here)
BUNDLE_DIR = "bundle"
PIPELINE_MODEL_TYPE = "videofoundry-pipeline"

# What `serving.mlflow_model.VideoPipelineModel.predict` takes per row (None: the bundle's default)
# and the params of the whole call; it returns one row per prompt with the video's path.
PREDICT_COLUMNS: dict[str, str] = {
    "prompt": "string",
    "negative_prompt": "string",
    "num_frames": "long",
    "height": "long",
    "width": "long",
    "num_inference_steps": "long",
    "guidance_scale": "double",
    "seed": "long",
}
PREDICT_PARAMS: dict[str, tuple[str, Any]] = {
    "output_dir": ("string", ""),
    "return_frames": ("boolean", False),
}
INPUT_EXAMPLE = {
    "prompt": ["a red ball rolls across a wooden floor"],
    "num_frames": [5],
    "height": [32],
    "width": [32],
    "num_inference_steps": [2],
    "seed": [0],
}


def pipeline_signature() -> Any:
    """The pyfunc signature of a pipeline bundle: prompt (required) and optional settings per row,
    `output_dir` / `return_frames` params, a `video_path` column out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema(
        [ColSpec(kind, name, required=name == "prompt") for name, kind in PREDICT_COLUMNS.items()]
    )
    params = ParamSchema([ParamSpec(name, kind, default) for name, (kind, default) in PREDICT_PARAMS.items()])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("string", "video_path")]), params=params)


def vae_signature() -> Any:
    """The pyfunc signature of a VAE export (`evaluation.mlflow_vae`): media_path (required) and
    optional frame range and size per row, an `output_dir` param; psnr, frames, size, output_path out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    columns = {
        "media_path": "string",
        "start_frame": "long",
        "num_frames": "long",
        "height": "long",
        "width": "long",
    }
    inputs = Schema([ColSpec(kind, name, required=name == "media_path") for name, kind in columns.items()])
    outputs = Schema(
        [ColSpec(kind, name) for name, kind in
         {"psnr": "double", "frames": "long", "height": "long", "width": "long", "output_path": "string"}.items()]
    )  # fmt: skip
    params = ParamSchema([ParamSpec("output_dir", "string", "")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


@dataclass(frozen=True)
class PyfuncFace:
    """What makes a logged checkpoint loadable by `mlflow.pyfunc.load_model`: the module MLflow
    imports (named, not imported here: training imports neither serving nor evaluation), the
    signature and an input example."""

    loader_module: str
    signature: Callable[[], Any]
    input_example: Mapping[str, Any]


PIPELINE_FACE = PyfuncFace(PYFUNC_LOADER, pipeline_signature, INPUT_EXAMPLE)
VAE_FACE = PyfuncFace(
    "evaluation.mlflow_vae", vae_signature, {"media_path": ["clip.mp4"], "num_frames": [17], "height": [64]}
)


def _write_pyfunc_files(directory: Path, model: Any, run_id: str | None, face: PyfuncFace) -> None:
    """MLmodel (pyfunc flavor whose data is `bundle/`), signature, input example, requirements."""
    import pandas as pd
    from mlflow.models import Model
    from mlflow.pyfunc import save_model

    mlmodel = Model(
        artifact_path=model.artifact_location,
        run_id=run_id,
        model_uuid=model.model_id,
        model_id=model.model_id,
    )
    save_model(
        str(directory),
        loader_module=face.loader_module,
        mlflow_model=mlmodel,
        signature=face.signature(),
        input_example=pd.DataFrame(dict(face.input_example)),
        pip_requirements=["videofoundry"],
    )
    # `data` names the bundle folder logged beside the MLmodel (not copied into the temp folder).
    written = Model.load(str(directory / "MLmodel"))
    written.flavors["python_function"]["data"] = BUNDLE_DIR
    written.save(str(directory / "MLmodel"))


def log_checkpoint_model(
    client: Any,
    experiment_id: str,
    run_id: str,
    *,
    name: str,
    step: int,
    parts: Mapping[str, Path],
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    pyfunc: PyfuncFace | None,
    model_type: str = PIPELINE_MODEL_TYPE,
) -> str:
    """One LoggedModel of run `run_id` at `step` holding `parts` ({name under bundle/: local file or
    folder; "." for a folder whose files are bundle/ itself}); with a `pyfunc` face, the MLmodel
    files too. Returns the model id (READY)."""
    from mlflow.entities import LoggedModelOutput

    model = client.create_logged_model(
        experiment_id,
        name=name,
        source_run_id=run_id,
        params=flatten_params(params),
        tags=dict(tags),
        model_type=model_type,
    )
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=step)])
    for part, local in parts.items():
        if local.is_dir():
            target = BUNDLE_DIR if part == "." else f"{BUNDLE_DIR}/{part}"
            client.log_model_artifacts(model.model_id, str(local), target)
        else:
            client.log_model_artifact(model.model_id, str(local), BUNDLE_DIR)
    if pyfunc is not None:
        with tempfile.TemporaryDirectory() as tmp:
            _write_pyfunc_files(Path(tmp) / "model", model, run_id, pyfunc)
            client.log_model_artifacts(model.model_id, str(Path(tmp) / "model"))
    client.finalize_logged_model(model.model_id, "READY")
    return str(model.model_id)


def register_logged_model(
    client: Any,
    registered_name: str,
    model_id: str,
    run_id: str | None,
    tags: Mapping[str, str],
    description: str,
) -> str:
    """A new version of `registered_name` (created with `description` if missing) linked to the
    LoggedModel `model_id`, its source the model's artifact folder; returns the version number."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(registered_name)
    except MlflowException:
        client.create_registered_model(registered_name, description=description)
    # The source is the logged model's artifact location (not `models:/<model_id>`: MLflow's SQL
    # registry resolves that through the process-wide tracking URI, not this client's). SQL
    # registries do not store `model_id` on the version either: the caller's `model_id` tag does.
    location = client.get_logged_model(model_id).artifact_location
    version = client.create_model_version(
        registered_name, source=location, run_id=run_id, tags=dict(tags), model_id=model_id
    )
    return str(version.version)

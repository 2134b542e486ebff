"""The MLflow record of a LoRA: one run (params, loss curve, the file as artifact `lora/`) and one
registered model per LoRA, ``videofoundry-lora-<name>``, one version per training.

Version tags (what the demo and `generate --lora models:/…` read):

    kind            "lora"
    base_model      the base model's version label (e.g. "videofoundry-dit v3 (@champion)", "tiny-random")
    base_reference  the reference it was trained from (what `--model` took)
    data_version    loradata:<hash of the caption folder>
    config_sha      SHA-256 of the LoRA training config (the config: run params `lora.*`, artifact
                    `config/lora.yaml`)
    task            t2v | i2v
    rank            the LoRA rank
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.dit.registry import code_version, config_tags
from training.tracking import RunTracker, TrackingSettings

LORA_MODEL_PREFIX = "videofoundry-lora-"
LORA_ARTIFACT = "lora"


@dataclass(frozen=True)
class LoRARecord:
    """What is known about a trained LoRA when it is registered."""

    name: str
    file: Path
    base_model: str
    base_reference: str
    data_version: str
    config_json: str
    task: str
    rank: int
    losses: tuple[float, ...]


def registered_name(name: str) -> str:
    """``videofoundry-lora-<name>`` with characters MLflow names dislike replaced."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return f"{LORA_MODEL_PREFIX}{safe}"


def register_lora(record: LoRARecord, tracking: TrackingSettings) -> tuple[str, str, str]:
    """Log the run and register the file; returns (registered model name, version, run id)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    assert tracking.uri is not None, "register_lora needs a tracking URI"
    tags = {
        "kind": "lora",
        "base_model": record.base_model,
        "base_reference": record.base_reference,
        "data_version": record.data_version,
        "task": record.task,
        "rank": str(record.rank),
        "code_version": code_version(),
        **config_tags(record.config_json),
    }
    tracker = RunTracker.for_run(
        tracking, is_main=True, run_name=f"lora_{record.name}", run_id=None, tags=tags
    )
    assert tracker.run_id is not None
    tracker.log_config("lora", json.loads(record.config_json))
    tracker.log_params({"base_model": record.base_model})
    for step, loss in enumerate(record.losses, start=1):
        tracker.log_metrics({"loss": loss}, step)
    tracker.log_file(record.file, LORA_ARTIFACT)
    tracker.finish()

    model_name = registered_name(record.name)
    client = MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)
    try:
        client.get_registered_model(model_name)
    except MlflowException:
        client.create_registered_model(
            model_name,
            tags={"kind": "lora"},
            description=f"LoRA {record.name} of {record.base_model} (videofoundry train-lora)",
        )
    source = f"{client.get_run(tracker.run_id).info.artifact_uri}/{LORA_ARTIFACT}"
    version = client.create_model_version(model_name, source=source, run_id=tracker.run_id, tags=tags)
    return model_name, str(version.version), tracker.run_id


def config_json(values: dict[str, object]) -> str:
    return json.dumps(values, sort_keys=True, default=str)

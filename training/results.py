"""`TrainResult`: what one training run did (the VAE, or one DiT stage), on every launch path.

The trainer returns it in-process; under Ray Train, rank 0 reports `to_metrics()` with
`ray.train.report` and the driver rebuilds the same dataclass from `Result.metrics` with
`from_metrics` (training.launch). Fields a trainer does not produce keep their empty defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one `train()` call.

    Attributes:
        name: what was trained: "vae" or the DiT stage name (e.g. "image_256").
        steps_done: optimizer steps completed in total (a resumed run counts the earlier ones).
        resumed_from: the step the call started at (0 for a fresh run).
        checkpoint: the last published checkpoint directory (`step_<k>/`), None if none exists.
        run_id: the MLflow run, None without tracking.
        world_size: ranks that trained.
        samples_per_second: samples over all ranks per wall-clock second of this call.
        final_loss: mean training loss of the last ≤10 steps (NaN when no step ever ran).
        last_loss: training loss of the last step (NaN when no step ever ran; DiT).
        data_version: the data version the run recorded.
        evals: held-out evaluations in step order, each {"step": k, metric: value} (VAE).
        model_versions: registry versions, one per checkpoint, oldest first (DiT).
        bucket_losses: mean loss of the last ≤10 steps per bucket (DiT).
    """

    name: str
    steps_done: int
    resumed_from: int
    checkpoint: Path | None
    run_id: str | None = None
    world_size: int = 1
    samples_per_second: float = 0.0
    final_loss: float = math.nan
    last_loss: float = math.nan
    data_version: str = "unversioned"
    evals: tuple[dict[str, float], ...] = ()
    model_versions: tuple[str, ...] = ()
    bucket_losses: dict[str, float] = field(default_factory=dict)

    @property
    def model_version(self) -> str | None:
        """The newest registered version (the stage's final one once it finished)."""
        return self.model_versions[-1] if self.model_versions else None

    def to_metrics(self) -> dict[str, Any]:
        """Plain JSON-able values (paths as strings, tuples as lists): what `ray.train.report` carries."""
        metrics = dataclasses.asdict(self)
        metrics["checkpoint"] = str(self.checkpoint) if self.checkpoint is not None else None
        metrics["evals"] = [dict(row) for row in self.evals]
        metrics["model_versions"] = list(self.model_versions)
        return metrics

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any]) -> TrainResult:
        """Inverse of `to_metrics`; keys that are not fields (added by Ray) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"name", "steps_done", "resumed_from", "checkpoint"} - set(metrics)
        if missing:
            raise ValueError(f"training metrics lack {sorted(missing)}: not a reported TrainResult")
        values = {k: v for k, v in metrics.items() if k in names}
        checkpoint = values.get("checkpoint")
        values["checkpoint"] = Path(checkpoint) if checkpoint else None
        values["evals"] = tuple(dict(row) for row in values.get("evals", ()))
        values["model_versions"] = tuple(str(v) for v in values.get("model_versions", ()))
        return cls(**values)

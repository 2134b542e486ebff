"""Promotion: the registry alias `champion` moves to a model version only when its gates pass.

A gate is one evaluation result against a threshold (VAE PSNR floor, human-eval preference, an
automatic metric). Every decision, promoted or not, is written on the candidate version as tags
(`promotion.decision`, `promotion.reason`, `promotion.<gate>`), so the registry shows why the
champion is the champion. The Gradio demo loads `models:/<name>@champion`, so it follows the alias.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

CHAMPION = "champion"


@dataclass(frozen=True)
class Gate:
    """`value` must be ≥ `threshold` (or ≤ when `higher_is_better` is False). None = not measured."""

    name: str
    value: float | None
    threshold: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    def describe(self) -> str:
        relation = "≥" if self.higher_is_better else "≤"
        shown = "not measured" if self.value is None else f"{self.value:.4g}"
        return f"{self.name} {shown} (needs {relation} {self.threshold:.4g})"


@dataclass(frozen=True)
class PromotionDecision:
    model_name: str
    version: str
    promoted: bool
    reason: str
    previous_champion: str | None


def promote(
    tracking_uri: str,
    model_name: str,
    version: str | int,
    gates: Sequence[Gate],
    alias: str = CHAMPION,
) -> PromotionDecision:
    """Point `alias` at `version` iff every gate passes (and there is at least one gate)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    version = str(version)
    client.get_model_version(model_name, version)  # raises if the version does not exist
    try:
        previous: str | None = str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        previous = None
    failed = [g for g in gates if not g.passed]
    if not gates:
        promoted, reason = False, "no evaluation gate was given; refusing to promote blind"
    elif failed:
        promoted, reason = False, "failed: " + "; ".join(g.describe() for g in failed)
    else:
        promoted, reason = True, "passed: " + "; ".join(g.describe() for g in gates)
    if promoted:
        client.set_registered_model_alias(model_name, alias, version)
    tags = {
        "promotion.decision": "promoted" if promoted else "rejected",
        "promotion.reason": reason,
        "promotion.alias": alias,
        "promotion.previous": previous or "",
        "promotion.time": str(int(time.time())),
        "promotion.gates": json.dumps(
            {g.name: {"value": g.value, "threshold": g.threshold, "passed": g.passed} for g in gates}
        ),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    return PromotionDecision(model_name, version, promoted, reason, previous)


def champion_version(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> str | None:
    """The version the alias names, or None when there is no champion yet."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return str(
            MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(model_name, alias).version
        )
    except MlflowException:
        return None


def latest_stage_version(tracking_uri: str, model_name: str, stage: str) -> str | None:
    """The newest registered version whose `stage` tag is `stage` (None when there is none)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    versions = [
        v for v in client.search_model_versions(f"name='{model_name}'") if v.tags.get("stage") == stage
    ]
    if not versions:
        return None
    return str(max(versions, key=lambda v: int(v.version)).version)

"""Promotion: the registry alias `champion` moves to a model version only when its gates pass.

A gate is one evaluation result against a threshold (VAE PSNR floor, human-eval preference, an
automatic metric). Every decision, promoted or not, is written on the candidate version as tags
(`promotion.decision`, `promotion.reason`, `promotion.<gate>`), so the registry shows why the
champion is the champion. The Gradio demo loads `models:/<name>@champion`, so it follows the alias.

The lineage's rules: the candidate is the newest version registered by the `sft` stage; a
human-eval campaign compares it with the champion (or, before there is one, with the newest
`video_high_long` version); `decide_promotion` gathers the gates from the VAE report, the
generations table and the campaign, and calls `promote`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.config import EvaluationConfig
from evaluation.human_eval import (
    ModelSpec,
    campaign_complete,
    campaign_results,
    find_campaign,
)
from evaluation.human_eval.store import DbLike
from media.tables import read_table

CHAMPION = "champion"
CANDIDATE_STAGE = "sft"
BASELINE_STAGE = "video_high_long"
# Floors of the gates that do not depend on the profile.


class MissingVersionError(LookupError):
    """The registry has no version a promotion step needs (no SFT version yet, no baseline)."""


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


def model_ref(model_name: str, version: str) -> str:
    """The serving reference of one registered version (`models:/<name>/<version>`)."""
    return f"models:/{model_name}/{version}"


def candidate_version(tracking_uri: str, model_name: str) -> str:
    """The newest `sft` version of `model_name`; MissingVersionError says to train it first."""
    version = latest_stage_version(tracking_uri, model_name, CANDIDATE_STAGE)
    if version is None:
        raise MissingVersionError(
            f"no registered {model_name} version with stage={CANDIDATE_STAGE}; run dit_{CANDIDATE_STAGE} first"
        )
    return version


@dataclass(frozen=True)
class Comparison:
    """The two versions a human-eval campaign puts side by side, and the campaign's name."""

    model_name: str
    candidate: str
    baseline: str

    @property
    def campaign(self) -> str:
        return f"{CANDIDATE_STAGE}-v{self.candidate}-vs-v{self.baseline}"

    @property
    def models(self) -> list[ModelSpec]:
        return [
            ModelSpec("candidate", model_ref(self.model_name, self.candidate)),
            ModelSpec("baseline", model_ref(self.model_name, self.baseline)),
        ]


def candidate_comparison(tracking_uri: str, model_name: str) -> Comparison:
    """The SFT candidate against the champion, or against the newest `video_high_long` version when
    there is no champion or the candidate already is it. Raises MissingVersionError."""
    candidate = candidate_version(tracking_uri, model_name)
    baseline = champion_version(tracking_uri, model_name)
    if baseline is None or baseline == candidate:
        baseline = latest_stage_version(tracking_uri, model_name, BASELINE_STAGE)
    if baseline is None:
        raise MissingVersionError(
            f"no baseline for {model_name} v{candidate}: neither a champion nor a {BASELINE_STAGE} version"
        )
    return Comparison(model_name, candidate, baseline)


def human_eval_gate(db: DbLike, campaign: str | None, floor: float) -> Gate:
    """The candidate's overall preference rate in `campaign`; not measured until every assignment is rated."""
    value = None
    if campaign is not None and campaign_complete(db, campaign_id := find_campaign(db, campaign)):
        table3 = campaign_results(db, campaign_id).table3
        row = table3[table3["Model"] == "candidate"]
        value = float(row["Overall preference"].iloc[0]) / 100 if not row.empty else None
    return Gate("human_eval_overall_win_rate", value, floor)


def decide_promotion(
    tracking_uri: str,
    model_name: str,
    *,
    vae_report: Path,
    generations: Path,
    floors: EvaluationConfig,
    human_eval_db: DbLike,
    campaign: str | None,
) -> PromotionDecision:
    """Promote the SFT candidate iff its gates pass; the decision is recorded on the version.

    Gates (floors from `floors`): the VAE's lowest benchmark PSNR in `vae_report` (vae_eval.json)
    ≥ `vae_psnr_floor_db`, the mean temporal consistency of the `generations` table ≥
    `temporal_consistency_floor`, and the human-eval preference ≥ `gsb_win_rate_floor` once the
    campaign is complete (always counted when `require_human_eval`, so no promotion happens before
    it completes).
    """
    candidate = candidate_version(tracking_uri, model_name)
    report = json.loads(vae_report.read_text())
    consistency = read_table(generations).column("temporal_consistency").to_numpy()
    gates = [
        Gate("vae_psnr_db", min(b["psnr"] for b in report["benchmarks"].values()), floors.vae_psnr_floor_db),
        Gate("temporal_consistency", float(np.mean(consistency)), floors.temporal_consistency_floor),
    ]
    human = human_eval_gate(human_eval_db, campaign, floors.gsb_win_rate_floor)
    if floors.require_human_eval or human.value is not None:
        gates.append(human)
    return promote(tracking_uri, model_name, candidate, gates)

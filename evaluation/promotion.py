"""Promotion: the registry alias `champion` moves to a model version only when its gates pass.

A gate is one evaluation result against a threshold (VAE PSNR floor, human-eval preference, an
automatic metric). Every decision, promoted or not, is written on the candidate version as tags
(`promotion.decision`, `promotion.reason`, `promotion.<gate>`), so the registry shows why the
champion is the champion. The Gradio demo loads `models:/<name>@champion`, so it follows the alias.

The lineage's rules: the candidate is the newest version registered by the `sft` stage; a
human-eval campaign compares it with the champion (or, before there is one, with the newest
`video_high_long` version); `decide_promotion` gathers the gates from the VAE report, the
video evaluation report and the campaign, and calls `promote`.

Registry reads go through `serving.registry`: a missing model, version or alias is an answer (no
champion yet), any other registry error (server down, permission, bad URI) raises
`RegistryUnavailableError`, so a campaign never compares against the wrong baseline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evaluation.config import EvaluationConfig
from evaluation.human_eval import (
    CampaignResults,
    ModelSpec,
    campaign_results,
    find_campaign,
)
from evaluation.human_eval.config import DIMENSIONS
from evaluation.human_eval.store import DbLike
from serving.registry import RegistryUnavailableError, alias_version, model_version, registry_client

CHAMPION = "champion"
CANDIDATE_STAGE = "sft"
BASELINE_STAGE = "video_high_long"


class MissingVersionError(LookupError):
    """The registry has no version a promotion step needs (no SFT version yet, no baseline)."""


@dataclass(frozen=True)
class Gate:
    """`value` must be ≥ `threshold` (≤ when not `higher_is_better`; > / < when `strict`).
    None = not measured (fails); `detail` says why or what the value is (shown in the reason)."""

    name: str
    value: float | None
    threshold: float
    higher_is_better: bool = True
    strict: bool = False
    detail: str = ""

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        if self.strict:
            return self.value > self.threshold if self.higher_is_better else self.value < self.threshold
        return self.value >= self.threshold if self.higher_is_better else self.value <= self.threshold

    @property
    def shortfall(self) -> float | None:
        """How far the value is on the failing side of the threshold (0 when it passes)."""
        if self.value is None:
            return None
        gap = self.threshold - self.value if self.higher_is_better else self.value - self.threshold
        return 0.0 if self.passed else max(gap, 0.0)

    def describe(self) -> str:
        relation = ("≥", "≤", ">", "<")[(not self.higher_is_better) + 2 * self.strict]
        shown = "not measured" if self.value is None else f"{self.value:.4g}"
        text = f"{self.name} {shown} (needs {relation} {self.threshold:.4g}"
        if self.value is not None and not self.passed:
            text += f"; short by {self.shortfall:.3g}"
        text += ")"
        return f"{text}: {self.detail}" if self.detail else text


@dataclass(frozen=True)
class PromotionDecision:
    """What `promote` decided and why; `notes` are facts added to the reason (no campaign, …)."""

    model_name: str
    version: str
    promoted: bool
    reason: str
    previous_champion: str | None
    gates: tuple[Gate, ...] = ()
    notes: tuple[str, ...] = ()


def promote(
    tracking_uri: str,
    model_name: str,
    version: str | int,
    gates: Sequence[Gate],
    alias: str = CHAMPION,
    notes: Sequence[str] = (),
) -> PromotionDecision:
    """Point `alias` at `version` iff every gate passes (and there is at least one gate).

    The decision is written on the version: tags `promotion.*` (decision, reason, gates as JSON,
    previous champion, time) and the version's description (the reason). Raises MissingVersionError
    for a version that does not exist, RegistryUnavailableError when the registry cannot be read.
    """
    version = str(version)
    if model_version(tracking_uri, model_name, version) is None:
        raise MissingVersionError(f"{model_name} v{version} is not in the registry at {tracking_uri}")
    previous = alias_version(tracking_uri, model_name, alias)
    failed = [g for g in gates if not g.passed]
    if not gates:
        promoted, reason = False, "no evaluation gate was given; refusing to promote blind"
    elif failed:
        promoted, reason = False, "failed: " + "; ".join(g.describe() for g in failed)
    else:
        promoted, reason = True, "passed: " + "; ".join(g.describe() for g in gates)
    if notes:
        reason += " | " + " | ".join(notes)
    client = registry_client(tracking_uri)
    if promoted:
        client.set_registered_model_alias(model_name, alias, version)
    tags = {
        "promotion.decision": "promoted" if promoted else "rejected",
        "promotion.reason": reason[:5000],
        "promotion.alias": alias,
        "promotion.previous": previous or "",
        "promotion.time": str(int(time.time())),
        "promotion.gates": json.dumps(
            {
                g.name: {
                    "value": g.value,
                    "threshold": g.threshold,
                    "passed": g.passed,
                    "shortfall": g.shortfall,
                }
                for g in gates
            }
        ),
    }
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    verdict = "promoted to" if promoted else "not promoted to"
    client.update_model_version(model_name, version, description=f"{verdict} @{alias}: {reason}"[:5000])
    return PromotionDecision(model_name, version, promoted, reason, previous, tuple(gates), tuple(notes))


def champion_version(tracking_uri: str, model_name: str, alias: str = CHAMPION) -> str | None:
    """The version the alias names; None only when the model or the alias does not exist
    (RegistryUnavailableError when the registry cannot be read)."""
    return alias_version(tracking_uri, model_name, alias)


def latest_stage_version(tracking_uri: str, model_name: str, stage: str) -> str | None:
    """The newest registered version whose `stage` tag is `stage` (None when there is none)."""
    from mlflow.exceptions import MlflowException

    try:
        found = registry_client(tracking_uri).search_model_versions(f"name='{model_name}'")
    except MlflowException as err:
        raise RegistryUnavailableError(
            f"cannot search the versions of {model_name!r} in the registry at {tracking_uri}: {err}"
        ) from err
    versions = [v for v in found if v.tags.get("stage") == stage]
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


@dataclass(frozen=True)
class HumanEvidence:
    """The human-eval gate, the note that goes into the decision, and the campaign's results."""

    gate: Gate
    note: str
    results: CampaignResults | None


def candidate_gsb(results: CampaignResults, dimension: str = "overall") -> tuple[float, float, float, int]:
    """The candidate's GSB score against the baseline in `dimension`: (gsb, ci_low, ci_high, n)."""
    gsb = results.gsb
    if gsb.empty:
        return float("nan"), float("nan"), float("nan"), 0
    row = gsb[
        (gsb["dimension"] == dimension) & ((gsb["model_x"] == "candidate") | (gsb["model_y"] == "candidate"))
    ]
    if row.empty:
        return float("nan"), float("nan"), float("nan"), 0
    r = row.iloc[0]
    if r["model_x"] == "candidate":
        return float(r["gsb"]), float(r["gsb_ci_low"]), float(r["gsb_ci_high"]), int(r["n"])
    # GSB rows are oriented alphabetically (baseline < candidate): flip to the candidate's side.
    return -float(r["gsb"]), -float(r["gsb_ci_high"]), -float(r["gsb_ci_low"]), int(r["n"])


def human_eval_gate(db: DbLike, campaign: str | None, config: EvaluationConfig) -> HumanEvidence:
    """The rule written in `evaluation.config`: a complete campaign with ≥ `human_eval_min_judgments`
    Overall judgments whose candidate GSB CI lies above `gsb_ci_low_floor`. The gate's value is the
    CI's lower end; it is None (not measured) without a complete campaign or with too few judgments."""
    name = "human_eval_overall_gsb_ci_low"

    def unmeasured(note: str, results: CampaignResults | None = None) -> HumanEvidence:
        gate = Gate(name, None, config.gsb_ci_low_floor, strict=True, detail=note)
        return HumanEvidence(gate, note, results)

    if campaign is None:
        return unmeasured("no human campaign was run")
    results = campaign_results(db, find_campaign(db, campaign), exclude_flagged=True)
    progress = results.progress
    if not progress.complete:
        return unmeasured(
            f"no human campaign was run to completion ({campaign}: {progress.rated}/{progress.assignments} "
            "assignments rated)",
            results,
        )
    gsb, low, high, n = candidate_gsb(results)
    summary = f"{campaign}: Overall GSB {gsb:+.3f}, {results.confidence:.0%} CI [{low:+.3f}, {high:+.3f}], {n} judgments"
    if n < config.human_eval_min_judgments:
        return unmeasured(
            f"{summary}; fewer than the {config.human_eval_min_judgments} judgments needed", results
        )
    gate = Gate(name, low, config.gsb_ci_low_floor, strict=True, detail=summary)
    return HumanEvidence(gate, summary, results)


def vae_gates(vae_report: dict) -> list[Gate]:
    """One gate per held-out benchmark from the `floor` section `vae_eval` writes (see
    `evaluation.vae_baselines.vae_floor_verdict`)."""
    floor = vae_report.get("floor")
    if floor is None:
        raise ValueError(
            "vae_eval.json has no 'floor' section; re-materialize vae_eval with this code version"
        )
    return [
        Gate(
            f"vae_psnr_db[{name}]",
            row["psnr_db"],
            row["floor_db"],
            detail=f"floor = mean colour {row['mean_colour_db']:.2f} dB + {floor['margin_db']} dB",
        )
        for name, row in floor["benchmarks"].items()
    ]


def video_gates(video_report: dict) -> list[Gate]:
    """One gate per calibrated video gate of an `evaluate_videos` report (its `to_dict()` form)."""
    if not video_report["gates"]:
        raise ValueError(
            "the video evaluation report has no gates; evaluate with a calibrated VideoEvalConfig preset"
        )
    return [
        Gate(
            f"video.{verdict['metric']}",
            verdict["value"],
            verdict["threshold"],
            higher_is_better=verdict["comparison"] == ">=",
            detail="" if verdict["value"] is not None else verdict["reason"],
        )
        for verdict in video_report["gates"]
    ]


@dataclass(frozen=True)
class PromotionOutcome:
    """A decision plus the evidence it was made on (for the report pictures)."""

    decision: PromotionDecision
    human: HumanEvidence


def decide_promotion(
    tracking_uri: str,
    model_name: str,
    *,
    vae_report: Path,
    video_report: Path,
    config: EvaluationConfig,
    human_eval_db: DbLike,
    campaign: str | None,
) -> PromotionOutcome:
    """Promote the SFT candidate iff its gates pass; the decision is recorded on the version.

    Gates: the VAE's held-out PSNR against its floor (mean-colour PSNR of the same items + margin,
    from `vae_report`), every calibrated video gate of `video_report` (the candidate's generations
    through `evaluate_videos`), and the human-eval gate (rule in `evaluation.config`) when
    `config.require_human_eval` or once a campaign is complete. Without it the decision says that no
    human campaign was run (to completion).
    """
    candidate = candidate_version(tracking_uri, model_name)
    gates = vae_gates(json.loads(vae_report.read_text())) + video_gates(json.loads(video_report.read_text()))
    human = human_eval_gate(human_eval_db, campaign, config)
    notes = []
    if config.require_human_eval or human.gate.value is not None:
        gates.append(human.gate)
    else:
        notes.append(f"human eval: {human.note}; promotion rests on the automatic gates alone")
    decision = promote(tracking_uri, model_name, candidate, gates, notes=notes)
    return PromotionOutcome(decision, human)


def candidate_gsb_frame(results: CampaignResults) -> pd.DataFrame:
    """The candidate's GSB against the baseline per dimension: columns dimension, gsb, ci_low,
    ci_high, n (rows only for dimensions with judgments)."""
    rows = []
    for dimension in DIMENSIONS:
        gsb, low, high, n = candidate_gsb(results, dimension)
        if n:
            rows.append({"dimension": dimension, "gsb": gsb, "ci_low": low, "ci_high": high, "n": n})
    return pd.DataFrame(rows, columns=["dimension", "gsb", "ci_low", "ci_high", "n"])


_EVAL_TAG = "eval.video."


def record_video_evaluation(
    tracking_uri: str, model_name: str, version: str, video_report: dict, run_id: str | None
) -> None:
    """Tag the version with its video metrics (`eval.video.<metric>` = set mean, `eval.video.passed`,
    `eval.video.run_id`), so a later candidate's report can draw them as the champion's."""
    client = registry_client(tracking_uri)
    for key, summary in video_report["metrics"].items():
        if summary["mean"] is not None:
            client.set_model_version_tag(
                model_name, version, f"{_EVAL_TAG}{key}", repr(float(summary["mean"]))
            )
    client.set_model_version_tag(model_name, version, f"{_EVAL_TAG}passed", str(bool(video_report["passed"])))
    if run_id is not None:
        client.set_model_version_tag(model_name, version, f"{_EVAL_TAG}run_id", run_id)


def recorded_video_metrics(tracking_uri: str, model_name: str, version: str) -> dict[str, float]:
    """The `eval.video.<metric>` means `record_video_evaluation` left on a version ({} if none)."""
    found = model_version(tracking_uri, model_name, version)
    if found is None:
        raise MissingVersionError(f"{model_name} v{version} is not in the registry at {tracking_uri}")
    return {
        key.removeprefix(_EVAL_TAG): float(value)
        for key, value in found.tags.items()
        if key.startswith(_EVAL_TAG) and key.removeprefix(_EVAL_TAG) not in ("passed", "run_id")
    }

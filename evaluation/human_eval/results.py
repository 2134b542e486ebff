"""The campaign report: every aggregate in one dataclass, rendered as Markdown or JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select

from evaluation.human_eval.aggregate import (
    agreement,
    bradley_terry,
    gsb_table,
    load_judgments,
    rater_quality,
    table3,
)
from evaluation.human_eval.campaign import CampaignProgress, campaign_progress
from evaluation.human_eval.config import DIMENSION_LABELS, DIMENSIONS, HumanEvalConfig
from evaluation.human_eval.schema import Campaign, ModelVersion
from evaluation.human_eval.store import DbLike, open_store

GSB_NOTE = (
    "GSB score = (G − B) / (G + S + B) per model pair and dimension (G: first model better). "
    "Table 3 rate = (wins + ½·ties) / comparisons per model, pooled over opponents; "
    "Ranking by Overall. Regular items only, first showings only; latest rating per assignment. "
    "CIs are percentile bootstraps over items."
)


@dataclass(frozen=True)
class CampaignResults:
    """Everything `eval-report` prints and the `human_eval` asset records."""

    campaign_id: int
    campaign: str
    progress: CampaignProgress
    table3: pd.DataFrame
    gsb: pd.DataFrame
    bradley_terry: dict[str, pd.DataFrame]
    agreement: pd.DataFrame
    rater_quality: pd.DataFrame
    excluded_raters: list[str]
    judgments: int
    confidence: float = 0.95  # level of every CI (GSB, Bradley–Terry)

    @property
    def champion(self) -> str | None:
        """The model ranked 1 in Table 3 (best Overall), or None without ratings."""
        return None if self.table3.empty else str(self.table3.iloc[0]["Model"])

    def to_markdown(self) -> str:
        lines = [
            f"# Human evaluation: {self.campaign}",
            "",
            f"Rated assignments: {self.progress.rated}/{self.progress.assignments}; "
            f"judgments used: {self.judgments}.",
            f"Excluded raters (gold accuracy below threshold): {', '.join(self.excluded_raters) or 'none'}.",
            "",
            "## Table 3 (preference rate, %)",
            "",
            _markdown(self.table3),
            "",
            "## GSB per dimension",
            "",
            _markdown(self.gsb),
            "",
        ]
        for dim, frame in self.bradley_terry.items():
            lines += [f"## Bradley–Terry log-strength: {DIMENSION_LABELS[dim]}", "", _markdown(frame), ""]
        lines += [
            "## Inter-rater agreement (Krippendorff's alpha)",
            "",
            _markdown(self.agreement),
            "",
            "## Rater quality",
            "",
            _markdown(self.rater_quality),
            "",
            f"Formula: {GSB_NOTE}",
        ]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN/inf become None)."""
        return {
            "campaign_id": self.campaign_id,
            "campaign": self.campaign,
            "assignments": self.progress.assignments,
            "rated": self.progress.rated,
            "complete": self.progress.complete,
            "champion": self.champion,
            "table3": _records(self.table3),
            "gsb": _records(self.gsb),
            "bradley_terry": {dim: _records(frame) for dim, frame in self.bradley_terry.items()},
            "agreement": _records(self.agreement),
            "rater_quality": _records(self.rater_quality),
            "excluded_raters": self.excluded_raters,
            "formula": GSB_NOTE,
        }


def campaign_results(
    db: DbLike, campaign_id: int, config: HumanEvalConfig | None = None, exclude_flagged: bool = False
) -> CampaignResults:
    """Aggregate a campaign. With `exclude_flagged`, raters failing gold items are left out of
    Table 3, GSB, Bradley–Terry and agreement (they stay in the rater-quality table)."""
    with open_store(db).session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(f"campaign {campaign_id} does not exist")
        name = campaign.name
        config = config or HumanEvalConfig.model_validate(campaign.config)
        durations = {
            m.name: m.duration
            for m in session.scalars(select(ModelVersion).where(ModelVersion.campaign_id == campaign_id))
        }
    judgments = load_judgments(db, campaign_id)
    quality = rater_quality(judgments, config.min_gold_accuracy) if not judgments.empty else pd.DataFrame()
    excluded: list[str] = []
    if exclude_flagged and not quality.empty:
        excluded = sorted(quality.loc[quality["flagged"], "rater"])
        judgments = judgments[~judgments["rater"].isin(excluded)]
    empty = judgments.empty
    return CampaignResults(
        campaign_id=campaign_id,
        campaign=name,
        progress=campaign_progress(db, campaign_id),
        table3=pd.DataFrame() if empty else table3(judgments, durations),
        gsb=pd.DataFrame()
        if empty
        else gsb_table(judgments, config.bootstrap_samples, config.confidence, seed=config.seed),
        bradley_terry={}
        if empty
        else {
            dim: bradley_terry(judgments, dim, config.bootstrap_samples, config.confidence, seed=config.seed)
            for dim in DIMENSIONS
        },
        agreement=pd.DataFrame() if empty else agreement(judgments),
        rater_quality=quality,
        excluded_raters=excluded,
        judgments=int(((judgments["kind"] == "regular") & ~judgments["is_duplicate"].astype(bool)).sum())
        if not empty
        else 0,
        confidence=config.confidence,
    )


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(no ratings yet)"
    return frame.to_markdown(index=False, floatfmt=".3f")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records = frame.to_dict(orient="records")
    return [
        {
            key: (
                None
                if isinstance(v, float) and not math.isfinite(v)
                else v.item()
                if hasattr(v, "item")
                else v
            )
            for key, v in row.items()
        }
        for row in records
    ]

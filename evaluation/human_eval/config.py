"""Typed configuration of a human-evaluation campaign, with `tiny` and `paper` presets."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The four questions of the report's human evaluation (paper §5.2, Table 3), in display order.
DIMENSIONS: tuple[str, ...] = ("text_alignment", "motion_quality", "visual_quality", "overall")

DIMENSION_LABELS: dict[str, str] = {
    "text_alignment": "Text alignment",
    "motion_quality": "Motion quality",
    "visual_quality": "Visual quality",
    "overall": "Overall preference",
}


class HumanEvalConfig(BaseModel):
    """How a campaign is built, stored and aggregated.

    `db_url` is any SQLAlchemy URL: the embedded default is a SQLite file (opened in WAL mode);
    at scale a `postgresql+psycopg://…` URL with the same models.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_url: str = Field(
        default="sqlite:///.videofoundry/human_eval.db", description="SQLAlchemy URL of the store."
    )
    raters_per_pair: int = Field(default=3, ge=1, description="k: distinct raters who judge every pair.")
    gold_fraction: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Gold items (known answer) added per regular item, as a fraction.",
    )
    duplicate_fraction: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="Fraction of a rater's items shown again, sides swapped."
    )
    pairing: Literal["all", "reference"] = Field(
        default="all", description="'all': every pair of models; 'reference': the first model vs each other."
    )
    seeds_per_prompt: int = Field(
        default=1, ge=1, description="Generations per (prompt, model), one seed each."
    )
    bootstrap_samples: int = Field(
        default=200, ge=10, description="Bootstrap resamples for Bradley–Terry CIs."
    )
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0, description="Two-sided CI level.")
    min_gold_accuracy: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Raters below this gold accuracy are flagged (and excludable).",
    )
    seed: int = Field(default=0, description="Seeds pair order, left/right sides and rater balancing.")

    @classmethod
    def tiny(cls, db_url: str = "sqlite:///.videofoundry/human_eval.db") -> HumanEvalConfig:
        """CPU tests and demos: 2 raters per pair, few bootstrap samples."""
        return cls(
            db_url=db_url, raters_per_pair=2, gold_fraction=0.2, duplicate_fraction=0.1, bootstrap_samples=50
        )

    @classmethod
    def paper(cls, db_url: str = "sqlite:///.videofoundry/human_eval.db") -> HumanEvalConfig:
        """The report's campaign scale: 1,533 prompts, 60 raters; 3 raters per pair, 1,000 resamples."""
        return cls(
            db_url=db_url,
            raters_per_pair=3,
            gold_fraction=0.05,
            duplicate_fraction=0.05,
            pairing="reference",
            bootstrap_samples=1000,
        )


def human_eval_config(profile: str, db_url: str) -> HumanEvalConfig:
    """The profile's campaign settings over the store at `db_url` (the assets and the CLI alike)."""
    preset = HumanEvalConfig.paper if profile == "paper" else HumanEvalConfig.tiny
    return preset(db_url)

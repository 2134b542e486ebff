"""Builders for tests that need a human-eval campaign: synthetic videos, raters, every rating."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from evaluation.human_eval import (
    BUILTIN_PROMPTS,
    DIMENSIONS,
    HumanEvalConfig,
    ModelSpec,
    assign_raters,
    create_campaign,
    create_rater,
    submit_rating,
)
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.schema import Assignment
from evaluation.human_eval.store import open_store


def synthetic_campaign(
    config: HumanEvalConfig, name: str, models: list[ModelSpec], videos: Path, raters: list[str]
) -> int:
    """A campaign over the first two built-in prompts with synthetic videos in `videos`, its items
    assigned to new accounts named `raters`; returns the campaign id."""
    campaign_id = create_campaign(
        config, name, BUILTIN_PROMPTS[:2], models, SyntheticGenerator(videos), config, videos
    )
    assign_raters(config, campaign_id, [create_rater(config, rater)[0].id for rater in raters], config)
    return campaign_id


def rate_everything(config: HumanEvalConfig, answer: str) -> int:
    """Answer `answer` ("left", "same" or "right") on every dimension of every assignment in the
    store, as its rater; returns how many were rated."""
    with open_store(config).session() as session:
        plan = [(a.id, a.rater_id) for a in session.scalars(select(Assignment))]
    for assignment_id, rater_id in plan:
        submit_rating(config, rater_id, assignment_id, uuid.uuid4().hex, dict.fromkeys(DIMENSIONS, answer))
    return len(plan)

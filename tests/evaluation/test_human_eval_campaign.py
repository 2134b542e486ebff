"""`advance_campaign` moves a campaign on as far as it can go, and the promotion gate reads it."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from evaluation.human_eval import (
    BUILTIN_PROMPTS,
    DIMENSIONS,
    HumanEvalConfig,
    ModelSpec,
    advance_campaign,
    create_rater,
    open_store,
    submit_rating,
)
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.schema import Assignment, Item
from evaluation.promotion import human_eval_gate

MODELS = [ModelSpec("candidate", "models:/dit/2"), ModelSpec("baseline", "models:/dit/1-noisy")]


def test_a_campaign_waits_for_raters_then_is_assigned_once_and_its_gate_follows_the_ratings(
    tmp_path: Path,
) -> None:
    config = HumanEvalConfig.preset(
        "tiny",
        db_url=f"sqlite:///{tmp_path / 'he.db'}",
        gold_fraction=0.0,
        duplicate_fraction=0.0,
        bootstrap_samples=20,
    )
    steps = (config, "sft-v2-vs-v1", BUILTIN_PROMPTS[:2], MODELS, SyntheticGenerator(tmp_path), tmp_path)
    first = advance_campaign(*steps)
    assert first.waiting_for_raters and first.raters == 0 and first.raters_per_pair == 2
    assert "0 rater account(s), 2 needed per pair" in first.describe()
    assert human_eval_gate(config, None, 0.5).value is None

    create_rater(config, "alice")
    create_rater(config, "root", role="admin")  # admins do not rate
    assert advance_campaign(*steps).waiting_for_raters
    create_rater(config, "bob")
    ready = advance_campaign(*steps)
    assert ready.campaign_id == first.campaign_id and ready.raters == 2 and not ready.waiting_for_raters
    assert (ready.progress.assignments, ready.progress.rated) == (4, 0)  # 2 pairs x 2 raters
    assert advance_campaign(*steps).progress == ready.progress  # dealt once
    assert human_eval_gate(config, "sft-v2-vs-v1", 0.5).value is None  # not complete yet

    with open_store(config).session() as session:
        rows = session.execute(select(Assignment, Item).join(Item, Item.id == Assignment.item_id)).all()
        # The candidate (generation A: the first model) wins every question.
        plan = [(a.id, a.rater_id, "left" if a.left_is_a else "right") for a, _ in rows]
    for assignment_id, rater_id, side in plan:
        submit_rating(config, rater_id, assignment_id, uuid.uuid4().hex, dict.fromkeys(DIMENSIONS, side))
    done = advance_campaign(*steps)
    assert (
        done.progress.rated == done.progress.assignments == 4 and "4/4 assignments rated" in done.describe()
    )
    gate = human_eval_gate(config, "sft-v2-vs-v1", 0.5)
    assert gate.value == pytest.approx(1.0) and gate.passed and gate.threshold == 0.5

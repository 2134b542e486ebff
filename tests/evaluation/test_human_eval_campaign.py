"""`advance_campaign` moves a campaign on as far as it can go, and the promotion gate reads it."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from evaluation.config import EvaluationConfig
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
# 2 prompts x 2 raters = 4 Overall judgments: the rule is checked at, and just above, that count.
RULE = EvaluationConfig.preset("tiny", human_eval_min_judgments=4)


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
    assert human_eval_gate(config, None, RULE).note == "no human campaign was run"

    create_rater(config, "alice")
    create_rater(config, "root", role="admin")  # admins do not rate
    assert advance_campaign(*steps).waiting_for_raters
    create_rater(config, "bob")
    ready = advance_campaign(*steps)
    assert ready.campaign_id == first.campaign_id and ready.raters == 2 and not ready.waiting_for_raters
    assert (ready.progress.assignments, ready.progress.rated) == (4, 0)  # 2 pairs x 2 raters
    assert advance_campaign(*steps).progress == ready.progress  # dealt once
    waiting = human_eval_gate(config, "sft-v2-vs-v1", RULE)
    assert waiting.gate.value is None and "0/4 assignments rated" in waiting.note  # not complete yet

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
    evidence = human_eval_gate(config, "sft-v2-vs-v1", RULE)
    assert (
        evidence.gate.value == pytest.approx(1.0) and evidence.gate.passed and evidence.gate.threshold == 0.0
    )
    assert "Overall GSB +1.000, 95% CI [+1.000, +1.000], 4 judgments" in evidence.note
    too_few = human_eval_gate(config, "sft-v2-vs-v1", RULE.replace(human_eval_min_judgments=5))
    assert too_few.gate.value is None and "fewer than the 5 judgments needed" in too_few.note

    # Raters change their minds to "same" (the latest rating counts): a tie is not enough to promote.
    for assignment_id, rater_id, _ in plan:
        submit_rating(config, rater_id, assignment_id, uuid.uuid4().hex, dict.fromkeys(DIMENSIONS, "same"))
    tie = human_eval_gate(config, "sft-v2-vs-v1", RULE).gate
    assert tie.value == pytest.approx(0.0) and not tie.passed and "needs > 0" in tie.describe()

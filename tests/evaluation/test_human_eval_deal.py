"""A rater who joins after a campaign is built gets the pairs still short of raters at once."""

from pathlib import Path

from evaluation.human_eval import BUILTIN_PROMPTS, HumanEvalConfig, ModelSpec, create_campaign, create_rater
from evaluation.human_eval.campaign import (
    advance_campaign,
    assign_raters,
    campaign_progress,
    deal_pending_items,
)
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.ratings import rater_progress


def _campaign(tmp_path: Path, k: int) -> tuple[HumanEvalConfig, int]:
    config = HumanEvalConfig.preset(
        "tiny", db_url=f"sqlite:///{tmp_path / 'he.db'}", raters_per_pair=k, gold_fraction=0.0,
        duplicate_fraction=0.0,
    )  # fmt: skip
    models = [ModelSpec("A", "m-a"), ModelSpec("B", "m-b"), ModelSpec("C", "m-c")]
    videos = tmp_path / "videos"
    gen = SyntheticGenerator(videos, size=(32, 32), frames=4)
    return config, create_campaign(config, "c", BUILTIN_PROMPTS[:2], models, gen, config, videos)


def test_new_raters_fill_each_item_up_to_k_raters_then_get_nothing(tmp_path: Path) -> None:
    config, campaign_id = _campaign(tmp_path, k=2)  # 2 prompts × 3 model pairs = 6 items
    alice, bob, carol = (create_rater(config, name)[0] for name in ("alice", "bob", "carol"))
    admin, _ = create_rater(config, "root", role="admin")
    assert deal_pending_items(config, admin.id) == 0
    assert deal_pending_items(config, alice.id) == 6 and rater_progress(config, alice.id).total == 6
    assert deal_pending_items(config, alice.id) == 0  # at the next sign-in: nothing twice
    assert deal_pending_items(config, bob.id) == 6
    assert deal_pending_items(config, carol.id) == 0  # every item has its k = 2 raters
    assert campaign_progress(config, campaign_id).assignments == 12
    status = advance_campaign(config, "c", [], [], SyntheticGenerator(tmp_path), tmp_path)
    assert not status.waiting_for_raters and status.progress.assignments == 12  # not dealt again


def test_a_balanced_campaign_leaves_a_newcomer_nothing_to_take(tmp_path: Path) -> None:
    config, campaign_id = _campaign(tmp_path, k=1)
    alice, bob = (create_rater(config, name)[0] for name in ("alice", "bob"))
    assign_raters(config, campaign_id, [alice.id, bob.id], config)
    carol, _ = create_rater(config, "carol")
    assert deal_pending_items(config, carol.id) == 0
    assert rater_progress(config, alice.id).total + rater_progress(config, bob.id).total == 6

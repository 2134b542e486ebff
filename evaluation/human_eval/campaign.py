"""Building a campaign: prompts × models → generations → comparison items → balanced assignments.

The generation step takes any callable `generate(prompt, seed, model_ref) -> path` (the serving
API in production, `media.SyntheticGenerator` in demos and tests). Every model sees the same seed
for a given (prompt, seed index), so pairs differ by model only.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tqdm import tqdm

from evaluation.human_eval.accounts import rater_ids
from evaluation.human_eval.config import HumanEvalConfig
from evaluation.human_eval.media import degrade_video
from evaluation.human_eval.prompts import PromptSpec
from evaluation.human_eval.schema import (
    Assignment,
    Campaign,
    Generation,
    Item,
    ModelVersion,
    Prompt,
    Rater,
    Rating,
)
from evaluation.human_eval.store import DbLike, open_store

Generate = Callable[[str, int, str], "Path | str"]

#: What a gold item expects: the undegraded original (generation A) wins on these dimensions.
GOLD_EXPECTED: dict[str, str] = {"motion_quality": "a", "visual_quality": "a", "overall": "a"}


class CampaignError(ValueError):
    """A campaign cannot be built as asked (duplicate name, too few models/raters, bad video)."""


@dataclass(frozen=True)
class ModelSpec:
    """A model under comparison. `model_ref` is passed to `generate` (e.g. `models:/dit@champion`)."""

    name: str
    model_ref: str
    duration: str | None = None


def generation_seed(campaign_seed: int, prompt_key: str, seed_index: int) -> int:
    """A stable 31-bit seed per (campaign seed, prompt, seed index), shared by all models."""
    digest = hashlib.sha256(f"{campaign_seed}|{prompt_key}|{seed_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def create_campaign(
    db: DbLike,
    name: str,
    prompts: Sequence[PromptSpec],
    models: Sequence[ModelSpec],
    generate: Generate,
    config: HumanEvalConfig,
    video_dir: Path,
    generation_params: dict[str, Any] | None = None,
) -> int:
    """Create a campaign, make its generations and comparison items; returns the campaign id.

    `video_dir` receives the degraded copies used by gold items. `generation_params` (e.g. steps,
    guidance, resolution) is recorded with every generation next to its seed and model ref.
    Raises `CampaignError` if the name exists, fewer than two models or no prompts are given, or
    `generate` returns a path that is not a file.
    """
    if len(models) < 2:
        raise CampaignError(f"campaign {name!r}: need at least two models to compare, got {len(models)}")
    if len({model.name for model in models}) != len(models):
        raise CampaignError(f"campaign {name!r}: model names must be unique")
    if not prompts:
        raise CampaignError(f"campaign {name!r}: the prompt set is empty")
    store = open_store(db)
    rng = random.Random(f"{config.seed}|{name}")
    with store.session(write=True) as session:
        if session.scalar(select(Campaign).where(Campaign.name == name)) is not None:
            raise CampaignError(f"a campaign named {name!r} already exists")
        campaign = Campaign(name=name, config=config.model_dump(mode="json"))
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
        model_rows = [
            ModelVersion(campaign_id=campaign_id, name=m.name, model_ref=m.model_ref, duration=m.duration)
            for m in models
        ]
        prompt_rows = [
            Prompt(campaign_id=campaign_id, key=p.key, text=p.text, category=p.category) for p in prompts
        ]
        session.add_all([*model_rows, *prompt_rows])
        session.flush()
        model_ids = [row.id for row in model_rows]
        prompt_ids = [(row.id, row.key, row.text) for row in prompt_rows]

    # Generations are committed one by one so a slow model's progress is not lost to a later error.
    generated: dict[tuple[int, int, int], int] = {}
    jobs = list(
        itertools.product(prompt_ids, range(config.seeds_per_prompt), zip(model_ids, models, strict=True))
    )
    for (prompt_id, prompt_key, prompt_text), seed_index, (model_id, model) in tqdm(
        jobs, desc=f"generations for {name}", disable=len(jobs) < 50 or not sys.stderr.isatty()
    ):
        seed = generation_seed(config.seed, prompt_key, seed_index)
        path = Path(generate(prompt_text, seed, model.model_ref))
        if not path.is_file():
            raise CampaignError(f"campaign {name!r}: generate() returned {path}, which is not a file")
        params = {
            "seed": seed,
            "seed_index": seed_index,
            "model_ref": model.model_ref,
            **(generation_params or {}),
        }
        with store.session(write=True) as session:
            row = Generation(
                campaign_id=campaign_id,
                prompt_id=prompt_id,
                model_version_id=model_id,
                seed=seed,
                params=params,
                video_path=str(path.resolve()),
            )
            session.add(row)
            session.flush()
            generated[(prompt_id, seed_index, model_id)] = row.id

    if config.pairing == "all":
        model_pairs = list(itertools.combinations(model_ids, 2))
    else:
        model_pairs = [(model_ids[0], other) for other in model_ids[1:]]
    with store.session(write=True) as session:
        regular = [
            Item(
                campaign_id=campaign_id,
                prompt_id=prompt_id,
                generation_a_id=generated[(prompt_id, seed_index, a)],
                generation_b_id=generated[(prompt_id, seed_index, b)],
                kind="regular",
            )
            for (prompt_id, _, _), seed_index, (a, b) in itertools.product(
                prompt_ids, range(config.seeds_per_prompt), model_pairs
            )
        ]
        session.add_all(regular)
        n_gold = round(config.gold_fraction * len(regular))
        if config.gold_fraction > 0 and n_gold == 0:
            n_gold = 1
        sources = rng.sample(sorted(generated.values()), k=min(n_gold, len(generated)))
        for source_id in sources:
            source = session.get_one(Generation, source_id)
            target = Path(video_dir) / f"campaign-{campaign_id}" / f"gold-{source_id}.mp4"
            degrade_video(Path(source.video_path), target)
            copy = Generation(
                campaign_id=campaign_id,
                prompt_id=source.prompt_id,
                model_version_id=source.model_version_id,
                seed=source.seed,
                params={**source.params, "degraded": "blur4+hold4"},
                video_path=str(target.resolve()),
                degraded_from_id=source.id,
            )
            session.add(copy)
            session.flush()
            session.add(
                Item(
                    campaign_id=campaign_id,
                    prompt_id=source.prompt_id,
                    generation_a_id=source.id,
                    generation_b_id=copy.id,
                    kind="gold",
                    gold_expected=dict(GOLD_EXPECTED),
                )
            )
    return campaign_id


def assign_raters(db: DbLike, campaign_id: int, rater_ids: Sequence[int], config: HumanEvalConfig) -> int:
    """Give every item to `k = config.raters_per_pair` distinct raters, balanced; returns #assignments.

    Balance: items are dealt in random order to the k least-loaded raters (ties broken at random),
    so rater loads differ by at most one. Each assignment's left/right order is drawn at random and
    recorded. A `duplicate_fraction` of each rater's regular items is queued again later with the
    sides swapped, to measure self-consistency. Raises `CampaignError` if there are fewer raters
    than k, an id is not a rater, or the campaign already has assignments.
    """
    k = config.raters_per_pair
    if len(set(rater_ids)) < k:
        raise CampaignError(
            f"campaign {campaign_id}: {len(set(rater_ids))} raters given, need k={k} per pair"
        )
    rng = random.Random(f"{config.seed}|assign|{campaign_id}")
    with open_store(db).session(write=True) as session:
        if session.get(Campaign, campaign_id) is None:
            raise CampaignError(f"campaign {campaign_id} does not exist")
        known = set(session.scalars(select(Rater.id).where(Rater.id.in_(rater_ids))))
        if missing := sorted(set(rater_ids) - known):
            raise CampaignError(f"campaign {campaign_id}: unknown rater ids {missing}")
        if session.scalar(select(func.count(Assignment.id)).where(Assignment.campaign_id == campaign_id)):
            raise CampaignError(f"campaign {campaign_id} already has assignments")
        items = list(session.scalars(select(Item).where(Item.campaign_id == campaign_id).order_by(Item.id)))
        rng.shuffle(items)
        load = {rater_id: 0 for rater_id in sorted(set(rater_ids))}
        queues: dict[int, list[tuple[Item, bool, bool]]] = {rater_id: [] for rater_id in load}
        for item in items:
            chosen = sorted(load, key=lambda rater_id: (load[rater_id], rng.random()))[:k]
            for rater_id in chosen:
                load[rater_id] += 1
                queues[rater_id].append((item, rng.random() < 0.5, False))
        total = 0
        for rater_id, queue in queues.items():
            rng.shuffle(queue)
            regular = [entry for entry in queue if entry[0].kind == "regular"]
            n_dup = round(config.duplicate_fraction * len(regular))
            for item, left_is_a, _ in rng.sample(regular, k=min(n_dup, len(regular))):
                # Re-shown later in the queue with the sides swapped.
                original_at = next(i for i, entry in enumerate(queue) if entry[0] is item)
                queue.insert(rng.randint(original_at + 1, len(queue)), (item, not left_is_a, True))
            for position, (item, left_is_a, is_duplicate) in enumerate(queue):
                session.add(
                    Assignment(
                        campaign_id=campaign_id,
                        item_id=item.id,
                        rater_id=rater_id,
                        position=position,
                        left_is_a=left_is_a,
                        is_duplicate=is_duplicate,
                    )
                )
            total += len(queue)
        return total


def find_campaign(db: DbLike, name_or_id: str | int) -> int:
    """The id of a campaign given its name or id; raises `CampaignError` if there is none."""
    with open_store(db).session() as session:
        row = session.scalar(select(Campaign).where(Campaign.name == str(name_or_id)))
        if row is None and str(name_or_id).isdigit():
            row = session.get(Campaign, int(name_or_id))
        if row is None:
            raise CampaignError(f"no campaign named or numbered {name_or_id!r}")
        return row.id


@dataclass(frozen=True)
class CampaignProgress:
    assignments: int
    rated: int

    @property
    def complete(self) -> bool:
        return self.assignments > 0 and self.rated == self.assignments


def campaign_progress(db: DbLike, campaign_id: int) -> CampaignProgress:
    """How many assignments exist and how many have at least one rating."""
    with open_store(db).session() as session:
        total = session.scalar(select(func.count(Assignment.id)).where(Assignment.campaign_id == campaign_id))
        rated = session.scalar(
            select(func.count(func.distinct(Rating.assignment_id)))
            .join(Assignment, Assignment.id == Rating.assignment_id)
            .where(Assignment.campaign_id == campaign_id)
        )
        return CampaignProgress(assignments=int(total or 0), rated=int(rated or 0))


def campaign_complete(db: DbLike, campaign_id: int) -> bool:
    """True when the campaign has assignments and every one of them has been rated."""
    return campaign_progress(db, campaign_id).complete


@dataclass(frozen=True)
class CampaignStatus:
    """Where a campaign stands after `advance_campaign`."""

    name: str
    campaign_id: int
    progress: CampaignProgress
    raters: int
    raters_per_pair: int

    @property
    def waiting_for_raters(self) -> bool:
        """True while nothing is assigned because fewer raters exist than each pair needs."""
        return self.progress.assignments == 0

    def describe(self) -> str:
        if self.waiting_for_raters:
            return (
                f"campaign {self.name}: {self.raters} rater account(s), {self.raters_per_pair} needed per pair; "
                "create them with `videofoundry eval-rater NAME` and advance the campaign again"
            )
        return f"campaign {self.name}: {self.progress.rated}/{self.progress.assignments} assignments rated"


def advance_campaign(
    config: HumanEvalConfig,
    name: str,
    prompts: Sequence[PromptSpec],
    models: Sequence[ModelSpec],
    generate: Generate,
    video_dir: Path,
) -> CampaignStatus:
    """Move the campaign `name` one step on, as far as it can go now; safe to call again.

    Creates it (generations and items, see `create_campaign`) unless a campaign of that name
    exists, then, while it has no assignments, deals every item to the raters once at least
    `config.raters_per_pair` rater accounts exist.
    """
    try:
        campaign_id = find_campaign(config, name)
    except CampaignError:
        campaign_id = create_campaign(config, name, prompts, models, generate, config, video_dir)
    raters = rater_ids(config)
    if campaign_progress(config, campaign_id).assignments == 0 and len(raters) >= config.raters_per_pair:
        assign_raters(config, campaign_id, raters, config)
    progress = campaign_progress(config, campaign_id)
    return CampaignStatus(name, campaign_id, progress, len(raters), config.raters_per_pair)


def deal_pending_items(db: DbLike, rater_id: int) -> int:
    """Give a (new) rater the items still short of their raters; returns how many were added.

    An item is short while fewer than its campaign's `raters_per_pair` distinct raters hold it, as
    every item is in a campaign still waiting for raters. Called when an account is created and at
    each sign-in, so a new rater has work at once instead of an empty queue until `human_eval` is
    materialized again. Items go to the end of the rater's queue in a seeded order with seeded
    sides; top-ups add no duplicate (self-consistency) items. Admin accounts get nothing.
    """
    added = 0
    with open_store(db).session(write=True) as session:
        rater = session.get(Rater, rater_id)
        if rater is None or rater.role != "rater" or not rater.active:
            return 0
        for campaign in session.scalars(select(Campaign).order_by(Campaign.id)):
            k = HumanEvalConfig.model_validate(campaign.config).raters_per_pair
            holders = (
                select(Assignment.item_id, func.count(func.distinct(Assignment.rater_id)).label("n"))
                .where(Assignment.campaign_id == campaign.id)
                .group_by(Assignment.item_id)
                .subquery()
            )
            mine = select(Assignment.item_id).where(Assignment.rater_id == rater_id)
            short = list(
                session.scalars(
                    select(Item.id)
                    .outerjoin(holders, holders.c.item_id == Item.id)
                    .where(Item.campaign_id == campaign.id, func.coalesce(holders.c.n, 0) < k)
                    .where(Item.id.not_in(mine))
                    .order_by(Item.id)
                )
            )
            rng = random.Random(f"{campaign.config.get('seed', 0)}|deal|{campaign.id}|{rater_id}")
            rng.shuffle(short)
            start = (
                session.scalar(select(func.count(Assignment.id)).where(Assignment.rater_id == rater_id)) or 0
            )
            for position, item_id in enumerate(short, start=start):
                session.add(
                    Assignment(
                        campaign_id=campaign.id, item_id=item_id, rater_id=rater_id,
                        position=position, left_is_a=rng.random() < 0.5,
                    )
                )  # fmt: skip
            added += len(short)
    return added

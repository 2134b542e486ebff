"""A demo campaign with synthetic videos, so the rater app can be tried before serving exists.

The videos come from `media.SyntheticGenerator` (moving squares), named as such in the model refs;
the accounts get random passwords that `seed_demo` returns once (only hashes are stored).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from evaluation.human_eval.accounts import create_rater
from evaluation.human_eval.campaign import ModelSpec, assign_raters, create_campaign
from evaluation.human_eval.config import HumanEvalConfig
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.prompts import BUILTIN_PROMPTS
from evaluation.human_eval.schema import Campaign
from evaluation.human_eval.sft import SftCandidateSpec, import_sft_candidates
from evaluation.human_eval.store import open_store

DEMO_CAMPAIGN = "demo-synthetic"


@dataclass(frozen=True)
class DemoAccounts:
    campaign_id: int
    passwords: dict[str, str]  # empty when the demo already existed


def seed_demo(config: HumanEvalConfig, video_dir: Path) -> DemoAccounts:
    """Create the demo campaign, two raters and an admin (idempotent: a second call does nothing)."""
    with open_store(config).session() as session:
        existing = session.scalar(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))
        if existing is not None:
            return DemoAccounts(existing.id, {})
    generate = SyntheticGenerator(video_dir / "synthetic", size=(128, 208), frames=24)
    models = [
        ModelSpec("synthetic-clean", "synthetic:clean", "3s"),
        ModelSpec("synthetic-noisy", "synthetic:noisy", "3s"),
    ]
    campaign_id = create_campaign(
        config, DEMO_CAMPAIGN, BUILTIN_PROMPTS[:6], models, generate, config, video_dir
    )
    passwords: dict[str, str] = {}
    rater_ids = []
    for name, role in (("demo-rater-1", "rater"), ("demo-rater-2", "rater"), ("demo-admin", "admin")):
        passwords[name] = secrets.token_urlsafe(9)
        identity, _ = create_rater(config, name, role=role, password=passwords[name])
        if role == "rater":
            rater_ids.append(identity.id)
    assign_raters(config, campaign_id, rater_ids, config.model_copy(update={"raters_per_pair": 2}))
    import_sft_candidates(
        config,
        [
            SftCandidateSpec(f"demo-clip-{i}", str(generate(prompt.text, 7, "synthetic:clean")), tier="720p")
            for i, prompt in enumerate(BUILTIN_PROMPTS[6:9])
        ],
    )
    return DemoAccounts(campaign_id, passwords)

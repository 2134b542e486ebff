"""Human evaluation: campaigns of blinded pairwise ratings (GSB per dimension) and SFT selection.

Usable from Dagster assets, the CLI and the rater app; every function takes the store (`db`: a
SQLAlchemy URL, a `HumanEvalConfig` or an open `HumanEvalStore`) as its first argument.
"""

from evaluation.human_eval.accounts import AuthError, RaterIdentity, authenticate, create_rater, login
from evaluation.human_eval.campaign import (
    CampaignError,
    CampaignStatus,
    ModelSpec,
    advance_campaign,
    assign_raters,
    campaign_complete,
    campaign_progress,
    create_campaign,
    find_campaign,
)
from evaluation.human_eval.config import DIMENSIONS, HumanEvalConfig
from evaluation.human_eval.prompts import BUILTIN_PROMPTS, PromptSpec, load_prompts
from evaluation.human_eval.ratings import submit_rating
from evaluation.human_eval.results import CampaignResults, campaign_results
from evaluation.human_eval.sft import (
    AUTO_RULE,
    SFT_SET_SCHEMA,
    SftCandidateSpec,
    SftClip,
    SftSelection,
    accepted_sft_clips,
    import_sft_candidates,
    select_sft_set,
)
from evaluation.human_eval.store import HumanEvalStore, open_store

__all__ = [
    "AUTO_RULE",
    "BUILTIN_PROMPTS",
    "DIMENSIONS",
    "AuthError",
    "CampaignError",
    "CampaignResults",
    "CampaignStatus",
    "HumanEvalConfig",
    "HumanEvalStore",
    "ModelSpec",
    "PromptSpec",
    "RaterIdentity",
    "SFT_SET_SCHEMA",
    "SftCandidateSpec",
    "SftClip",
    "SftSelection",
    "accepted_sft_clips",
    "advance_campaign",
    "assign_raters",
    "authenticate",
    "campaign_complete",
    "campaign_progress",
    "campaign_results",
    "create_campaign",
    "create_rater",
    "find_campaign",
    "import_sft_candidates",
    "load_prompts",
    "login",
    "open_store",
    "select_sft_set",
    "submit_rating",
]

"""Human evaluation: campaigns of blinded pairwise ratings (GSB per dimension) and SFT selection.

Usable from Dagster assets, the CLI and the rater app; every function takes the store (`db`: a
SQLAlchemy URL, a `HumanEvalConfig` or an open `HumanEvalStore`) as its first argument.
"""

from evaluation.human_eval.accounts import AuthError, RaterIdentity, authenticate, create_rater, login
from evaluation.human_eval.campaign import (
    CampaignError,
    ModelSpec,
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
from evaluation.human_eval.sft import SftCandidateSpec, SftClip, accepted_sft_clips, import_sft_candidates
from evaluation.human_eval.store import HumanEvalStore, open_store

__all__ = [
    "BUILTIN_PROMPTS",
    "DIMENSIONS",
    "AuthError",
    "CampaignError",
    "CampaignResults",
    "HumanEvalConfig",
    "HumanEvalStore",
    "ModelSpec",
    "PromptSpec",
    "RaterIdentity",
    "SftCandidateSpec",
    "SftClip",
    "accepted_sft_clips",
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
    "submit_rating",
]

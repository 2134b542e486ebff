"""`EvaluationConfig`: what the evaluation of a candidate model generates, and the human-eval rule.

The automatic gates live with their calibration: the video gates in
`evaluation.video_eval_config.VideoEvalConfig`, the VAE floor (mean-colour PSNR + margin, on the
same held-out items) in `evaluation.vae_baselines.VaeFloorConfig`.

When is a human campaign enough to promote? (`evaluation.promotion.human_eval_gate`)
  1. the campaign is complete (every assignment rated);
  2. it holds at least `human_eval_min_judgments` Overall judgments of the candidate against the
     baseline (regular items, first showings; raters who fail the gold items are left out);
  3. the lower end of the `HumanEvalConfig.confidence` (95 %) item-bootstrap CI of the candidate's
     Overall GSB score, (G − B) / (G + S + B), is above `gsb_ci_low_floor` (0: raters prefer the
     candidate more often than the baseline, beyond sampling noise). A tie (CI straddling 0) fails.
The Bradley–Terry scores and their CIs are reported beside it (`champion` report pictures); with the
two models of a promotion campaign they order the models as the GSB score does, so they do not gate.
Why 300 judgments at paper scale: a GSB score's standard error is at most 1/√n, so 300 judgments
bound the CI's half-width by ≈ 0.11; the tiny profile's 20 is for the demo's scripted campaign.

Presets: `tiny` (CPU, a few prompts, one seed; promotion on the automatic gates when no campaign
completed, and the decision says so) and `paper` (every built-in prompt, three seeds, the report's
sizes, a completed human campaign required for promotion).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from evaluation.human_eval.prompts import BUILTIN_PROMPTS, PromptSpec
from model.presets import PresetConfig
from serving.limits import GenerationSettings


class EvaluationConfig(PresetConfig, BaseModel):
    """Evaluation sets, held-out VAE sizes and promotion floors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_count: int | None = Field(
        default=4, ge=1, description="The first N built-in prompts are generated and rated (None: all)."
    )
    seeds: tuple[int, ...] = Field(default=(0,), min_length=1, description="One video per prompt and seed.")
    generation: GenerationSettings = Field(
        default_factory=lambda: GenerationSettings(height=64, width=64, frames=9, steps=8),
        description="Size and sampling of every evaluation video (its seed comes from `seeds`).",
    )
    sft_recall_clips: int = Field(
        default=2,
        ge=0,
        description="SFT clips the `generations` asset regenerates from their training captions "
        "(T2V and I2V) and scores by PSNR against the clip (evaluation.sft_recall); 0: none.",
    )
    vae_heldout_size: int = Field(default=64, description="Held-out clip height = width (px) of `vae_eval`.")
    vae_heldout_frames: int = Field(default=9, description="Held-out clip frames (4n+1) of `vae_eval`.")
    gsb_ci_low_floor: float = Field(
        default=0.0,
        description="The lower end of the CI of the candidate's Overall GSB score must exceed this.",
    )
    human_eval_min_judgments: int = Field(
        default=20, ge=1, description="Fewest Overall judgments of candidate vs baseline the gate accepts."
    )
    require_human_eval: bool = Field(
        default=False,
        description="Promotion waits for a completed human campaign (False: its gate counts once it has one).",
    )

    def prompts(self) -> tuple[PromptSpec, ...]:
        """The evaluation prompts: the first `prompt_count` built-in prompts."""
        return BUILTIN_PROMPTS[: self.prompt_count]


EvaluationConfig.PRESETS = {
    "tiny": EvaluationConfig(),
    "paper": EvaluationConfig(
        prompt_count=None,
        seeds=(0, 1, 2),
        generation=GenerationSettings(height=720, width=1280, frames=129, steps=50),
        vae_heldout_size=256,
        vae_heldout_frames=33,
        human_eval_min_judgments=300,
        require_human_eval=True,
    ),
}

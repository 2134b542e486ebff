"""`EvaluationConfig`: what the evaluation of a candidate model generates and which floors it must clear.

Presets: `tiny` (CPU, a few prompts, one seed, loose floors a seconds-long training run can pass)
and `paper` (every built-in prompt, three seeds, the report's sizes and a 30 dB VAE floor, a
completed human campaign required for promotion).
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
    vae_heldout_size: int = Field(default=64, description="Held-out clip height = width (px) of `vae_eval`.")
    vae_heldout_frames: int = Field(default=9, description="Held-out clip frames (4n+1) of `vae_eval`.")
    vae_psnr_floor_db: float = Field(
        default=10.0, description="Lowest acceptable held-out reconstruction PSNR of the VAE (dB)."
    )
    temporal_consistency_floor: float = Field(
        default=0.5, description="Lowest mean temporal consistency of the evaluation videos to promote."
    )
    gsb_win_rate_floor: float = Field(
        default=0.5, description="Lowest overall GSB win rate of the candidate in the human campaign."
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
        vae_psnr_floor_db=30.0,
        require_human_eval=True,
    ),
}

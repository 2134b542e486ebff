"""Fit the step cache's rescaling on the user's model (`videofoundry calibrate-cache`).

The model samples a few prompts with every step computed; at each step the step cache records the
relative change of its indicator (the first block's modulated input) and of the blocks' residual.
A polynomial fitted from the first to the second (`model.step_cache.fit_rescale`) is what the cache
accumulates at generation time, so its threshold reads as "accumulated relative change of the
blocks' output". The report also says, per candidate threshold, what share of steps the recorded
runs would have computed, so a user can pick one for the speed they want.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model.step_cache import fit_rescale, write_calibration
from serving.api import load_pipeline
from serving.config import ServingConfig
from serving.limits import GenerationSettings, validate_prompt
from serving.references import DEFAULT_REGISTERED_MODEL

CANDIDATE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3)


@dataclass(frozen=True)
class Calibration:
    """A fitted rescale polynomial, the pairs it came from, and the computed share per threshold."""

    rescale: list[float]
    pairs: int
    computed_share: dict[float, float]
    path: Path


def _computed_share(runs: Sequence[Sequence[float]], rescale: Sequence[float], threshold: float) -> float:
    """Share of steps the cache would compute over recorded runs of indicator changes."""
    computed = total = 0
    for changes in runs:
        steps, acc = len(changes) + 1, 0.0
        computed += 1  # the first step
        for i, change in enumerate(changes, start=1):
            acc += max(float(np.polyval(rescale, change)), 0.0)
            if i == steps - 1 or acc >= threshold:
                computed, acc = computed + 1, 0.0
        total += steps
    return computed / total


def calibrate_step_cache(
    model: str | None,
    prompts: Sequence[str],
    out: str | Path,
    *,
    config: ServingConfig | None = None,
    settings: GenerationSettings | None = None,
    tracking_uri: str | None = None,
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    degree: int = 4,
) -> Calibration:
    """Sample `prompts` with `model` computing every step, fit the rescaling, write it to `out`."""
    if not prompts:
        raise ValueError("calibrate-cache needs at least one prompt")
    config = (config or ServingConfig()).replace(step_cache=0.0, step_cache_calibration=None)
    settings = (settings or GenerationSettings(steps=config.default_steps)).checked(config.limits)
    pipeline = load_pipeline(
        model, config=config, tracking_uri=tracking_uri, registered_model=registered_model
    )
    cache = pipeline.transformer.step_cache
    assert cache is not None
    pairs: list[tuple[float, float]] = []
    runs: list[list[float]] = []
    for seed, prompt in enumerate(prompts):
        text = pipeline.encode_text([validate_prompt(prompt, config.limits)])
        pipeline.sample_latents(
            text, height=settings.height, width=settings.width, frames=settings.frames, steps=settings.steps,
            shift=float(settings.shift or 7.0), guidance=settings.guidance, cfg_scale=1.0, seed=seed,
        )  # fmt: skip
        pairs += cache.stats.pairs
        runs.append([change for change, _ in cache.stats.pairs])
    rescale = fit_rescale(pairs, degree=min(degree, len(pairs) - 1))
    shares = {t: round(_computed_share(runs, rescale, t), 3) for t in CANDIDATE_THRESHOLDS}
    info: dict[str, Any] = {
        "model_version": pipeline.model_version,
        "prompts": len(prompts),
        "steps": settings.steps,
        "size": [settings.height, settings.width, settings.frames],
        "pairs": len(pairs),
        "computed_share": {str(k): v for k, v in shares.items()},
    }
    path = write_calibration(out, rescale, info)
    return Calibration(rescale, len(pairs), shares, path)

"""A generation request's settings, the limits per serving profile, and the up-front validation.

`GenerationSettings` is the one definition of `serving.generate`'s sampling keywords. Every rule is
checked once, in `serving.generate`, before any model loads, so a bad request fails in milliseconds
with a message that names the input, never as a shape error or a CUDA out-of-memory deep in the
sampler.

Rules (SPEC §3, §6):
- frames = 4n + 1 (the causal VAE maps 4n + 1 frames to n + 1 latent frames);
- height and width multiples of 16 (VAE 8× in space, then the DiT's 2×2 patch);
- per-profile ceilings on each side, on the pixel area, on frames and on steps;
- seed None (draw one) or an integer in [0, MAX_SEED], a signed 64-bit value that the CPU
  generator, Parquet and MLflow all hold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

MAX_SEED = 2**63 - 1


class InvalidRequestError(ValueError):
    """A generation request breaks a size/steps/prompt rule; the message names the input and the rule."""


@dataclass(frozen=True)
class RequestLimits:
    """Ceilings of one serving preset (the defaults: the CPU demo's; see `ServingConfig.PRESETS`).

    Attributes:
        max_side: largest height or width in pixels.
        max_area: largest height × width in pixels (720×1280 for the paper profile).
        min_side: smallest height or width in pixels (one DiT patch of one latent pixel pair = 16).
        max_frames: largest frame count (4n + 1).
        max_steps: most denoising steps.
        max_prompt_chars: prompts longer than this are rejected outright (the text encoder's token
            limit is applied separately, by truncation with a notice).
    """

    max_side: int = 256
    max_area: int = 256 * 256
    min_side: int = 16
    max_frames: int = 33
    max_steps: int = 50
    max_prompt_chars: int = 4000

    def frame_choices(self) -> list[int]:
        """Every allowed frame count, 1, 5, 9, … max_frames."""
        return list(range(1, self.max_frames + 1, 4))


def validate_size(height: int, width: int, frames: int, limits: RequestLimits) -> None:
    """Raise `InvalidRequestError` listing every broken size rule (all of them, not just the first)."""
    problems: list[str] = []
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{name} must be an integer number of pixels, got {value!r}")
            continue
        if value % 16:
            lower, upper = max(16, value // 16 * 16), (value // 16 + 1) * 16
            problems.append(f"{name} {value} is not a multiple of 16 (try {lower} or {upper})")
        if value < limits.min_side:
            problems.append(f"{name} {value} is below the minimum of {limits.min_side}")
        elif value > limits.max_side:
            problems.append(f"{name} {value} exceeds this server's limit of {limits.max_side}")
    if not problems and height * width > limits.max_area:
        problems.append(
            f"height × width = {height}×{width} = {height * width} pixels exceeds this server's limit of "
            f"{limits.max_area} pixels per frame"
        )
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        problems.append(f"frames must be a positive integer of the form 4n+1, got {frames!r}")
    else:
        if (frames - 1) % 4:
            lower, upper = max(1, (frames - 1) // 4 * 4 + 1), ((frames - 1) // 4 + 1) * 4 + 1
            problems.append(f"frames {frames} is not of the form 4n+1 (try {lower} or {upper})")
        if frames > limits.max_frames:
            problems.append(f"frames {frames} exceeds this server's limit of {limits.max_frames}")
    if problems:
        raise InvalidRequestError("invalid video size: " + "; ".join(problems))


def validate_sampling(
    steps: int, shift: float, guidance: float, cfg_scale: float, limits: RequestLimits
) -> None:
    """Raise `InvalidRequestError` for steps outside [1, max_steps] or non-positive shift/scales."""
    problems: list[str] = []
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= limits.max_steps:
        problems.append(f"steps must be an integer in [1, {limits.max_steps}], got {steps!r}")
    if not shift > 0:
        problems.append(f"shift must be positive, got {shift!r}")
    if not guidance >= 0:
        problems.append(f"guidance (embedded) must be >= 0, got {guidance!r}")
    if not cfg_scale >= 1:
        problems.append(f"cfg_scale must be >= 1 (1 turns real CFG off), got {cfg_scale!r}")
    if problems:
        raise InvalidRequestError("invalid sampling settings: " + "; ".join(problems))


def validate_seed(seed: int | None) -> None:
    """Raise `InvalidRequestError` unless `seed` is None or an integer in [0, MAX_SEED]."""
    if seed is None:
        return
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InvalidRequestError(
            f"seed must be an integer in [0, 2^63 - 1] (or none to draw one), got {seed!r}"
        )


def validate_prompt(prompt: str, limits: RequestLimits) -> str:
    """The stripped prompt; rejects empty or non-text prompts and ones over `max_prompt_chars`."""
    if not isinstance(prompt, str):
        raise InvalidRequestError(f"prompt must be text, got {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise InvalidRequestError("prompt is empty: describe the video to generate")
    if len(text) > limits.max_prompt_chars:
        raise InvalidRequestError(
            f"prompt has {len(text)} characters; this server accepts at most {limits.max_prompt_chars}"
        )
    return text


# diffusers' HunyuanVideoPipeline argument → our setting (`guidance_scale` is the embedded guidance
# there too; `true_cfg_scale` its real CFG).
DIFFUSERS_NAMES = {
    "num_inference_steps": "steps",
    "num_frames": "frames",
    "guidance_scale": "guidance",
    "true_cfg_scale": "cfg_scale",
    "generator": "seed",
}


def _seed_from_generator(generator: Any) -> int:
    if isinstance(generator, list):
        raise InvalidRequestError("generator: one video per call here; pass one torch.Generator, not a list")
    if not isinstance(generator, torch.Generator):
        raise InvalidRequestError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return int(torch.randint(0, 2**31 - 1, (), generator=generator).item())


@dataclass(frozen=True)
class GenerationSettings:
    """How one video is sampled, besides its prompt, image and model (`serving.generate`'s keywords).

    Attributes:
        height, width: pixels, multiples of 16 within the profile's limits.
        frames: 4n + 1 within the profile's limits.
        steps: Euler steps.
        shift: schedule shift; None: 7 for >= 20 steps, else 17 (the released values).
        guidance: embedded (distilled) guidance scale, fed as guidance·1000 to models that embed it.
        cfg_scale: real classifier-free guidance against `negative_prompt`; 1 = off (one DiT pass per
            step), > 1 doubles the DiT batch.
        negative_prompt: what the unconditional branch reads; used only when cfg_scale > 1.
        seed: noise seed (CPU generator); same seed + device + settings = same video. None draws one
            and records it in the metadata.
        i2v_stability: the released I2V sampler's stability start (image latent mixed into the noise).
    """

    height: int = 64
    width: int = 64
    frames: int = 9
    steps: int = 50
    shift: float | None = None
    guidance: float = 6.0
    cfg_scale: float = 1.0
    negative_prompt: str = ""
    seed: int | None = None
    i2v_stability: bool = False

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> GenerationSettings:
        """Settings from keyword arguments, under our names or diffusers' (`DIFFUSERS_NAMES`:
        num_inference_steps, num_frames, guidance_scale, true_cfg_scale, generator). A torch
        `generator` gives the noise seed: one integer drawn from it, so a generator seeded the same
        way gives the same video. An unknown name, or a setting given under both names, raises
        `InvalidRequestError`."""
        names = [f.name for f in dataclasses.fields(cls)]
        given = dict(keywords)
        for theirs, ours in DIFFUSERS_NAMES.items():
            if theirs not in given:
                continue
            if ours in given:
                raise InvalidRequestError(f"{theirs} and {ours} name the same setting; give one")
            value = given.pop(theirs)
            given[ours] = _seed_from_generator(value) if theirs == "generator" else value
        if unknown := sorted(set(given) - set(names)):
            raise InvalidRequestError(
                f"unknown generation setting {', '.join(unknown)}; the settings are {', '.join(names)} "
                f"(or diffusers' {', '.join(DIFFUSERS_NAMES)})"
            )
        return cls(**given)

    def checked(self, limits: RequestLimits) -> GenerationSettings:
        """These settings once every rule of `limits` holds, with the shift resolved and the negative
        prompt's whitespace normalised (emptied when real CFG is off). Raises `InvalidRequestError`."""
        validate_size(self.height, self.width, self.frames, limits)
        many_steps = isinstance(self.steps, int) and self.steps >= 20
        shift = self.shift if self.shift is not None else (7.0 if many_steps else 17.0)
        validate_sampling(self.steps, shift, self.guidance, self.cfg_scale, limits)
        validate_seed(self.seed)
        negative = " ".join(self.negative_prompt.split()) if self.cfg_scale > 1.0 else ""
        return dataclasses.replace(self, shift=shift, negative_prompt=negative)

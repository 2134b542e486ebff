"""The flow-matching objective of DiT training (SPEC.md §4; maths in `model.flow`).

Paper convention: x_t = (1 − t)·noise + t·data, t ∈ (0, 1), target velocity data − noise, MSE.
The released DiT is fed the noise level instead, timestep = 1000·(1 − t), and predicts
dx/dσ = noise − data (= −velocity). `model.flow.model_timestep` / `model_target` do that
conversion, so this loss equals the paper's MSE on velocities exactly (the sign flips on both
the prediction and the target) and checkpoints share the released sampler's convention.

t: σ = sigmoid(N(t_mean, t_std)) then the SD3 shift s·σ / (1 + (s − 1)·σ), t = 1 − σ.
Text dropout: with probability `text_dropout` a sample's (states, mask, pooled) are replaced by the
encodings of '' so the model also learns the unconditional flow (classifier-free guidance).
Guidance input: see `GuidanceSpec` (fixed 6.0 by default), fed as scale × 1000.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from model.flow import TIMESTEP_SCALE, interpolate, model_target, model_timestep, sample_timesteps
from training.dit.config import GuidanceSpec
from training.dit.latent_cache import LatentBatch


def drop_text(
    batch: LatentBatch, empty: dict[str, torch.Tensor], prob: float, generator: torch.Generator
) -> LatentBatch:
    """Replace each sample's text by the empty prompt's with probability `prob` (B draws from `generator`)."""
    drop = torch.rand(batch.latents.shape[0], generator=generator) < prob
    if not bool(drop.any()):
        return batch
    states, mask, pooled = batch.text_states.clone(), batch.text_mask.clone(), batch.text_pooled.clone()
    states[drop] = empty["text_states"].to(states.dtype)
    mask[drop] = empty["text_mask"].bool()
    pooled[drop] = empty["text_pooled"].to(pooled.dtype)
    return LatentBatch(batch.latents, states, mask, pooled)


def guidance_values(spec: GuidanceSpec, batch: int, generator: torch.Generator) -> torch.Tensor:
    """(B,) embedded guidance input = scale × 1000 (fixed, or uniform in [low, high])."""
    if spec.mode == "fixed":
        scale = torch.full((batch,), spec.scale)
    else:
        scale = spec.low + (spec.high - spec.low) * torch.rand(batch, generator=generator)
    return scale * TIMESTEP_SCALE


class FlowLossConfig(Protocol):
    """The fields of the loss's settings (DiTTrainConfig and the LoRA training config have them)."""

    @property
    def t_mean(self) -> float: ...
    @property
    def t_std(self) -> float: ...
    @property
    def t_shift(self) -> float: ...
    @property
    def guidance(self) -> GuidanceSpec: ...


@dataclass
class LossTerms:
    loss: torch.Tensor  # scalar, mean over the micro-batch
    t: torch.Tensor  # (B,) paper-convention times used


def flow_matching_loss(
    model: nn.Module,
    batch: LatentBatch,
    config: FlowLossConfig,
    generator: torch.Generator,
    device: torch.device,
    guidance_embed: bool = True,
    first_frame_clean: bool = False,
) -> LossTerms:
    """MSE between the DiT's prediction at x_t and noise − data (== paper velocity MSE, see module docstring).

    All randomness (t, noise, guidance) comes from the CPU `generator`, so a step is reproducible on
    any device. `batch` must already have text dropout applied. `first_frame_clean` (I2V,
    token_replace): the clean first latent frame is given to the model as the condition and the loss
    covers the other frames only.
    """
    data = batch.latents.to(device)
    b = data.shape[0]
    t = sample_timesteps(b, mean=config.t_mean, std=config.t_std, shift=config.t_shift, generator=generator)
    noise = torch.randn(data.shape, generator=generator).to(device)
    guidance = guidance_values(config.guidance, b, generator).to(device) if guidance_embed else None
    t_dev = t.to(device)
    x_t = interpolate(noise, data, t_dev)
    pred = model(
        x_t,
        model_timestep(t_dev),
        batch.text_states.to(device),
        batch.text_mask.to(device),
        batch.text_pooled.to(device),
        guidance=guidance,
        **({"first_frame_clean": data[:, :, :1]} if first_frame_clean else {}),
    )
    target = model_target(noise, data)
    if first_frame_clean:
        if data.shape[2] < 2:
            raise ValueError("I2V loss needs clips of at least 2 latent frames (the first is the condition)")
        pred, target = pred[:, :, 1:], target[:, :, 1:]
    loss = F.mse_loss(pred.float(), target.float())
    return LossTerms(loss, t)

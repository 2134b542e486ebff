"""Sampling from a DiT being trained: fixed prompts → latents → (optionally) decoded videos.

Used for the periodic sample videos of a run and by the SFT reconstruction check. Inference runs
the paper's Euler sampler (`model.flow.euler_sample`) with the embedded guidance input and no
real CFG (the distilled model's mode). Fixed seeds make samples of successive checkpoints
comparable.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange
from torch import nn

from model.flow import TIMESTEP_SCALE, euler_sample
from model.text import TextEncoding
from model.vae import CausalVAE3D


@torch.no_grad()
def sample_latents(
    model: nn.Module,
    text: TextEncoding,
    latent_shape: tuple[int, int, int, int],
    num_steps: int,
    shift: float,
    guidance_scale: float | None,
    seed: int = 0,
) -> torch.Tensor:
    """(B, C, T, H, W) latents (× scaling factor) for the B prompts of `text`; latent_shape = (C, T, H, W)."""
    device = next(model.parameters()).device
    batch = text.states.shape[0]
    noise = torch.randn((batch, *latent_shape), generator=torch.Generator().manual_seed(seed)).to(device)
    guidance = (
        None
        if guidance_scale is None
        else torch.full((batch,), guidance_scale * TIMESTEP_SCALE, device=device)
    )
    states, mask, pooled = text.states.to(device), text.mask.to(device), text.pooled.to(device)

    def flow(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return model(x, timestep, states, mask, pooled, guidance=guidance)

    return euler_sample(flow, noise, num_steps, shift=shift)


@torch.no_grad()
def decode_to_frames(vae: CausalVAE3D, latents: torch.Tensor) -> np.ndarray:
    """(B, C, T, h, w) scaled latents -> (B, 4(T−1)+1, 8h, 8w, 3) uint8 RGB."""
    vae_device = next(vae.parameters()).device
    video = vae.decode(latents.to(vae_device) / vae.config.scaling_factor).clamp(-1, 1)
    video = ((video + 1) * 127.5).round().to(torch.uint8).cpu()
    return rearrange(video, "b c t h w -> b t h w c").numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 arrays of one shape (peak 255)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)

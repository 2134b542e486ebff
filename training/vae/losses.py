"""VAE losses and the 3D patch discriminator.

Shape legend: B batch, C channels, F frames, H/W pixels. Inputs/reconstructions (B, 3, F, H, W) in
[-1, 1]; images are F = 1 videos. Weights and the fixed (non-adaptive) adversarial factor: see
`training.vae.config`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.perceptual import PerceptualDistance


class PatchDiscriminator3D(nn.Module):
    """PatchGAN in 3D: strided Conv3d stack → one real/fake logit per spatio-temporal patch.

    Kernels are (3, 4, 4) with temporal padding 1 and temporal stride 1, so a one-frame image is a
    valid input and each logit sees a few frames; space is halved per layer (receptive field ~70 px
    for 3 layers, as in pix2pix). GroupNorm instead of BatchNorm: batches are tiny per worker.
    Output: (B, 1, F, H / 2^layers, W / 2^layers) logits.
    """

    def __init__(self, channels: int = 64, layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Conv3d(in_channels, channels, (3, 4, 4), (1, 2, 2), (1, 1, 1)),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        width = channels
        for index in range(1, layers):
            out = channels * min(2**index, 8)
            blocks += [
                nn.Conv3d(width, out, (3, 4, 4), (1, 2, 2), (1, 1, 1), bias=False),
                nn.GroupNorm(min(32, out // 4), out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            width = out
        blocks += [nn.Conv3d(width, 1, (3, 3, 3), 1, 1)]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[relu(1 − D(x))] + E[relu(1 + D(x̂))], halved (as in VQGAN)."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


@dataclass
class GeneratorLossTerms:
    """Weighted total and the unweighted terms (for logging)."""

    total: torch.Tensor
    l1: torch.Tensor
    perceptual: torch.Tensor
    kl: torch.Tensor
    adversarial: torch.Tensor


def _frame_subset(x: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Evenly spaced ≤ max_frames frames of (B, 3, F, H, W): bounds the perceptual net's cost."""
    frames = x.shape[2]
    if frames <= max_frames:
        return x
    index = torch.linspace(0, frames - 1, max_frames, device=x.device).round().long()
    return x.index_select(2, index)


def generator_loss(
    video: torch.Tensor,
    recon: torch.Tensor,
    kl: torch.Tensor,
    perceptual: PerceptualDistance,
    discriminator: nn.Module | None,
    l1_weight: float,
    perceptual_weight: float,
    adversarial_weight: float,
    kl_weight: float,
    perceptual_max_frames: int,
) -> GeneratorLossTerms:
    """L1 + w_p·perceptual + w_adv·(−E D(x̂)) + w_kl·KL; `discriminator=None` before its start step.

    `kl`: (B,) KL summed over latent elements. Returns float32 scalars.
    """
    recon = recon.float()
    video = video.float()
    l1 = (recon - video).abs().mean()
    if perceptual_weight > 0:
        percep = perceptual(
            _frame_subset(recon, perceptual_max_frames), _frame_subset(video, perceptual_max_frames)
        ).mean()
    else:
        percep = torch.zeros((), device=video.device)
    kl_mean = kl.float().mean()
    if discriminator is not None and adversarial_weight > 0:
        adversarial = -discriminator(recon).float().mean()
    else:
        adversarial = torch.zeros((), device=video.device)
    total = (
        l1_weight * l1 + perceptual_weight * percep + adversarial_weight * adversarial + kl_weight * kl_mean
    )
    return GeneratorLossTerms(total, l1.detach(), percep.detach(), kl_mean.detach(), adversarial.detach())

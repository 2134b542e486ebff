"""Flow-matching maths shared by training and sampling (SPEC §4: path, logit-normal t, shift, Euler).

Two time variables, one path:
- the paper's t in [0, 1]: x_t = (1 - t)·noise + t·data, velocity dx/dt = data - noise (t = 1 is data);
- the noise level sigma = 1 - t used by the released DiT and its scheduler: the DiT receives
  `1000·sigma` and predicts dx/dsigma = noise - data (= -velocity). `model_timestep` and
  `model_target` convert, so a model trained here and the released weights share one convention.

The SD3 shift s·sigma / (1 + (s - 1)·sigma) acts on the noise level: s > 1 spends more of training
and of the sampling schedule at high noise (official: 7 for 50 steps, 17 for fewer than 20).

Shapes: x (B, ...) any latent shape; t, sigma (B,) float in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

TIMESTEP_SCALE = 1000.0


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def interpolate(noise: torch.Tensor, data: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 - t)·noise + t·data, t (B,) in [0, 1] (the paper's t; 0 = noise)."""
    t = _expand(t, data)
    return (1 - t) * noise + t * data


def velocity_target(noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """The paper's velocity dx/dt = data - noise."""
    return data - noise


def model_target(noise: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """What the DiT predicts (released convention): dx/dsigma = noise - data = -velocity_target."""
    return noise - data


def model_timestep(t: torch.Tensor) -> torch.Tensor:
    """The DiT's timestep input for the paper's t: 1000·(1 - t) (1000 = pure noise)."""
    return TIMESTEP_SCALE * (1 - t)


def shift_timesteps(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3 shift of a noise level: s·sigma / (1 + (s - 1)·sigma); identity for s = 1."""
    if shift <= 0:
        raise ValueError(f"shift must be positive, got {shift}")
    return shift * sigma / (1 + (shift - 1) * sigma)


def sample_timesteps(
    batch: int,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Training times t (B,) in (0, 1) (paper convention): sigma = sigmoid(N(mean, std)), shifted, t = 1 - sigma."""
    normal = torch.randn(batch, generator=generator, device=device) * std + mean
    sigma = shift_timesteps(torch.sigmoid(normal), shift)
    return 1 - sigma


def sigma_schedule(num_steps: int, shift: float, device: torch.device | str | None = None) -> torch.Tensor:
    """num_steps + 1 noise levels from 1 to 0, uniformly spaced then shifted (official scheduler)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return shift_timesteps(torch.linspace(1.0, 0.0, num_steps + 1, device=device), shift)


ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def euler_sample(
    model_fn: ModelFn,
    noise: torch.Tensor,
    num_steps: int,
    shift: float = 7.0,
    first_frame_clean: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Integrate the flow from noise (sigma = 1) to data (sigma = 0) with Euler steps.

    Args:
        model_fn: (x (B, C, T, H, W), timestep (B,) in [0, 1000]) -> dx/dsigma, e.g. a closure over
            the DiT with text conditioning and guidance (classifier-free guidance belongs there too).
        noise: starting latents; integration happens in float32, the result has noise's dtype.
        num_steps: Euler steps; shift: schedule shift (7 for 50 steps, 17 for < 20).
        first_frame_clean: (B, C, 1, H, W) for I2V: the first latent frame is pinned to it.
        callback: called as callback(step_index, x) after each step (progress bars).
    """
    sigmas = sigma_schedule(num_steps, shift, device=noise.device)
    x = noise.float()
    if first_frame_clean is not None:
        x[:, :, :1] = first_frame_clean.float()
    batch = noise.shape[0]
    for i in range(num_steps):
        timestep = torch.full((batch,), float(sigmas[i]) * TIMESTEP_SCALE, device=noise.device)
        pred = model_fn(x.to(noise.dtype), timestep).float()
        x = x + (sigmas[i + 1] - sigmas[i]) * pred
        if first_frame_clean is not None:
            x[:, :, :1] = first_frame_clean.float()
        if callback is not None:
            callback(i, x)
    return x.to(noise.dtype)

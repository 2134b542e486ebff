"""Flow-matching maths: path, targets, timestep sampling and shift, Euler sampler."""

from __future__ import annotations

import pytest
import torch

from model import flow


def test_path_endpoints_and_targets() -> None:
    noise, data = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    assert torch.allclose(flow.interpolate(noise, data, torch.zeros(3)), noise)
    assert torch.allclose(flow.interpolate(noise, data, torch.ones(3)), data)
    t = torch.tensor([0.25, 0.5, 0.75])
    eps = 1e-3
    numeric = (flow.interpolate(noise, data, t + eps) - flow.interpolate(noise, data, t)) / eps
    assert torch.allclose(numeric, flow.velocity_target(noise, data), atol=1e-3)
    assert torch.equal(flow.model_target(noise, data), -flow.velocity_target(noise, data))
    assert torch.allclose(flow.model_timestep(torch.tensor([0.0, 1.0])), torch.tensor([1000.0, 0.0]))


def test_shift_formula_and_direction() -> None:
    sigma = torch.tensor([0.0, 0.25, 0.5, 1.0])
    shifted = flow.shift_timesteps(sigma, 7.0)
    assert torch.allclose(shifted, 7 * sigma / (1 + 6 * sigma))
    assert shifted[0] == 0 and shifted[-1] == 1 and (shifted[1:3] > sigma[1:3]).all()
    assert torch.equal(flow.shift_timesteps(sigma, 1.0), sigma)
    with pytest.raises(ValueError):
        flow.shift_timesteps(sigma, 0.0)


def test_logit_normal_sampling_with_shift() -> None:
    gen = torch.Generator().manual_seed(0)
    t = flow.sample_timesteps(20000, generator=gen)
    assert t.min() > 0 and t.max() < 1
    assert abs(float(t.median()) - 0.5) < 0.02
    shifted = flow.sample_timesteps(20000, shift=3.0, generator=torch.Generator().manual_seed(0))
    assert float(shifted.mean()) < float(t.mean()) - 0.1  # more mass near noise (t = 0)


def test_schedule_runs_from_noise_to_data() -> None:
    sigmas = flow.sigma_schedule(50, 7.0)
    assert sigmas.shape == (51,) and sigmas[0] == 1 and sigmas[-1] == 0
    assert (sigmas[1:] < sigmas[:-1]).all()


def test_euler_with_the_exact_flow_reaches_the_data() -> None:
    data = torch.randn(2, 4, 3, 2, 2)
    noise = torch.randn_like(data)
    seen: list[float] = []

    def exact(x: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        seen.append(float(timestep[0]))
        sigma = timestep[0] / 1000
        # On the straight path x = sigma·noise + (1 - sigma)·data, dx/dsigma = noise - data.
        return (x - data) / sigma if sigma > 0 else noise - data

    out = flow.euler_sample(exact, noise, num_steps=5, shift=3.0)
    assert torch.allclose(out, data, atol=1e-5)
    assert seen[0] == pytest.approx(1000.0) and len(seen) == 5


def test_euler_pins_the_first_frame_for_i2v() -> None:
    noise = torch.randn(1, 4, 3, 2, 2)
    clean = torch.full((1, 4, 1, 2, 2), 0.5)
    out = flow.euler_sample(lambda x, t: torch.ones_like(x), noise, num_steps=3, first_frame_clean=clean)
    assert torch.equal(out[:, :, :1], clean)
    assert torch.allclose(out[:, :, 1:], noise[:, :, 1:] - 1)

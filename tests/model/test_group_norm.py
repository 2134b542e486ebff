"""GroupNorm5d's streamed statistics against F.group_norm where |mean| ≫ std, and float64 through the VAE.

Decoder activations can sit far from zero with a small spread; one-pass E[x²] − E[x]² statistics
then lose every digit in float32 (and refused float64 outright).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.causal_conv import GroupNorm5d
from model.vae import CausalVAE3D, VAEConfig
from tests.model.builders import randomize_, rel_err

GROUPS, CHANNELS, FRAMES = 4, 16, 7


def _norm(per_frame: bool, dtype: torch.dtype) -> GroupNorm5d:
    norm = GroupNorm5d(GROUPS, CHANNELS, per_frame).to(dtype)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(CHANNELS, generator=gen))
        norm.bias.copy_(torch.randn(CHANNELS, generator=gen))
    return norm


def _offset_video(mean: float, std: float, dtype: torch.dtype) -> torch.Tensor:
    """(2, C, 7, 5, 6): mean + std·N(0, 1), each channel shifted by its own std-sized offset."""
    gen = torch.Generator().manual_seed(0)
    channel_offset = std * torch.randn(1, CHANNELS, 1, 1, 1, generator=gen, dtype=torch.float64)
    noise = std * torch.randn(2, CHANNELS, FRAMES, 5, 6, generator=gen, dtype=torch.float64)
    return (mean + channel_offset + noise).to(dtype)


def _reference(norm: GroupNorm5d, x: torch.Tensor) -> torch.Tensor:
    """F.group_norm in float64 on the same values: over the clip, or over each frame (frames as batch)."""
    weight, bias, x = norm.weight.double(), norm.bias.double(), x.double()
    if not norm.per_frame:
        return F.group_norm(x, GROUPS, weight, bias, norm.eps)
    frames = x.transpose(1, 2).flatten(0, 1)  # (B·T, C, H, W)
    out = F.group_norm(frames, GROUPS, weight, bias, norm.eps)
    return out.unflatten(0, (x.shape[0], x.shape[2])).transpose(1, 2)


# float32 keeps ~1e-3 here (x·scale and the shift cancel in any folded GroupNorm, F.group_norm's too);
# one-pass statistics were off by ~500.
@pytest.mark.parametrize(
    ("dtype", "mean", "tolerance"), [(torch.float32, 1e3, 1e-2), (torch.float64, 1e6, 1e-7)]
)
@pytest.mark.parametrize("per_frame", [False, True])
@pytest.mark.parametrize("chunk", [FRAMES, 2])
def test_statistics_match_group_norm_where_the_mean_dwarfs_the_spread(
    dtype: torch.dtype, mean: float, tolerance: float, per_frame: bool, chunk: int
) -> None:
    norm = _norm(per_frame, dtype)
    x = _offset_video(mean, 0.1, dtype)
    mean_t, rstd = norm.statistics(x, chunk)
    assert mean_t.dtype == rstd.dtype == dtype
    assert mean_t.shape == (2, GROUPS, 1, FRAMES if per_frame else 1, 1, 1)
    out = norm.apply_stats(x, mean_t, rstd, 0)
    assert out.dtype == dtype
    assert (out.double() - _reference(norm, x)).abs().max() < tolerance


@pytest.mark.parametrize("per_frame", [False, True])
def test_the_chunked_inference_path_normalises_like_group_norm(per_frame: bool) -> None:
    """silu_pre (what the VAE's chunked convs read), a few frames at a time, with no padding."""
    norm = _norm(per_frame, torch.float32)
    x = _offset_video(1e3, 0.1, torch.float32)
    expected = F.silu(_reference(norm, x))
    with torch.no_grad():  # the path the VAE takes in inference only
        pre = norm.silu_pre(x)
        for a, b in [(0, 3), (3, 5), (5, FRAMES)]:
            part = pre(x[:, :, a:b], a, b, (0, 0, 0, 0, 0, 0))
            assert (part.double() - expected[:, :, a:b]).abs().max() < 1e-2


def test_half_inputs_get_float32_statistics() -> None:
    """bfloat16 activations: float32 results, the mean exact to float32, 1/std to bfloat16's precision."""
    norm = _norm(False, torch.bfloat16)
    x = _offset_video(3.0, 0.1, torch.bfloat16)
    mean, rstd = norm.statistics(x, 2)
    assert mean.dtype == rstd.dtype == torch.float32
    grouped = x.double().reshape(2, GROUPS, -1)
    true_mean, true_var = grouped.mean(-1), grouped.var(-1, correction=0)
    assert (mean.flatten(1).double() - true_mean).abs().max() < 1e-4 * 0.1
    assert ((rstd.flatten(1).double() * (true_var + norm.eps).sqrt()) - 1).abs().max() < 5e-3


@pytest.fixture(scope="module")
def vae() -> CausalVAE3D:
    torch.manual_seed(0)
    return randomize_(CausalVAE3D(VAEConfig.preset("tiny")), std=0.1).eval()


def test_float64_decodes_end_to_end_and_float32_stays_close_where_latents_sit_far_from_zero(
    vae: CausalVAE3D,
) -> None:
    """Latents offset by 300: every GroupNorm sees |mean| ≫ std. The chunked float32 decode stays within
    1e-4 of float64 (one-pass statistics: 2.6e-4); float64 runs both paths and they agree."""
    z = 300 + torch.randn(1, 16, 4, 3, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        lean32 = vae.decode(z)
    vae.double()
    try:
        with torch.no_grad():
            lean64 = vae.decode(z.double())
        with torch.enable_grad():
            plain64 = vae.decode(z.double()).detach()
    finally:
        vae.float()
    assert lean64.dtype == torch.float64 and lean64.shape == (1, 3, 13, 24, 40)
    assert rel_err(lean64, plain64) < 1e-12
    assert rel_err(lean32, lean64) < 1e-4

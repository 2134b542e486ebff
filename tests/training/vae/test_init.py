"""The VAE trainer's init choice (`zero_init_residuals`): the demo preset's, not tiny's."""

from __future__ import annotations

import torch

from model.vae import CausalVAE3D, ResnetBlock, VAEConfig
from training.vae.config import VAETrainConfig
from training.vae.trainer import initialised


def _fresh() -> CausalVAE3D:
    torch.manual_seed(0)
    return CausalVAE3D(VAEConfig.preset("tiny"))


def test_the_demo_init_starts_with_identity_residual_blocks() -> None:
    demo = initialised(_fresh(), VAETrainConfig.preset("demo"))
    blocks = [m for m in demo.modules() if isinstance(m, ResnetBlock) and m.conv_shortcut is None]
    assert blocks
    with torch.no_grad():
        for block in blocks:  # the residual branch adds exactly zero
            h = torch.randn(1, block.conv1.conv.in_channels, 2, 8, 8)
            assert torch.equal(block(h), h)
        video = torch.rand(1, 3, 5, 32, 32) * 2 - 1
        assert demo.decode(demo.encode(video).mode()).shape == video.shape


def test_the_tiny_preset_keeps_the_default_init() -> None:
    tiny = initialised(_fresh(), VAETrainConfig.preset("tiny"))
    reference = _fresh()
    assert all(
        torch.equal(a, b)
        for a, b in zip(tiny.state_dict().values(), reference.state_dict().values(), strict=True)
    )

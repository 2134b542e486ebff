"""Perceptual distances: zero on identical inputs, monotone in distortion, LPIPS loads local files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model import perceptual
from model.perceptual import LPIPS, MobileNetFeatureDistance, build_perceptual_distance


def test_mobilenet_distance_video_and_gradients() -> None:
    torch.manual_seed(0)
    metric = MobileNetFeatureDistance()
    x = torch.rand(2, 3, 3, 48, 48) * 2 - 1
    assert metric(x, x).tolist() == [0.0, 0.0]
    small = metric(x, x + 0.05 * torch.randn_like(x))
    large = metric(x, x + 0.3 * torch.randn_like(x))
    assert small.shape == (2,) and bool((small < large).all())
    y = (x + 0.1).requires_grad_()
    metric(x, y).sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0
    metric.train()
    assert not metric.net.training  # frozen BatchNorm statistics


@pytest.mark.parametrize("net", ["vgg", "alex"])
def test_lpips_loads_torchvision_layout_weights(tmp_path: Path, net: str) -> None:
    # Random weights saved in torchvision's and lpips' key layouts stand in for the real files.
    torch.manual_seed(1)

    features = perceptual._vgg16_features() if net == "vgg" else perceptual._alexnet_features()
    channels = perceptual._VGG16_CHANNELS if net == "vgg" else perceptual._ALEX_CHANNELS
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, tmp_path / "backbone.pth")
    torch.save(
        {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(channels)},
        tmp_path / "heads.pth",
    )
    metric = build_perceptual_distance(f"lpips_{net}", tmp_path / "backbone.pth", tmp_path / "heads.pth")  # type: ignore[arg-type]
    assert metric.name == f"lpips_{net}"
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    assert float(metric(x, x)) == 0.0
    assert (
        0 < float(metric(x, x + 0.05 * torch.randn_like(x))) < float(metric(x, x + 0.5 * torch.randn_like(x)))
    )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LPIPS(net, tmp_path / "missing.pth", tmp_path / "heads.pth")  # type: ignore[arg-type]

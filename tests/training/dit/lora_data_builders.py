"""A tiny LoRA data folder: moving-square videos and a still image, each with a caption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from media.video import write_video


def square_video(
    color: tuple[int, int, int], frames: int = 9, size: tuple[int, int] = (48, 64)
) -> np.ndarray:
    """(frames, H, W, 3) uint8: a `color` square moving right over grey."""
    height, width = size
    video = np.full((frames, height, width, 3), 96, dtype=np.uint8)
    for i in range(frames):
        left = 4 + 4 * i
        video[i, 12:36, left : left + 20] = color
    return video


def make_lora_folder(root: Path, videos: int = 2, images: int = 1) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    colors = [(220, 40, 40), (40, 40, 220), (40, 200, 60)]
    for i in range(videos):
        write_video(root / f"clip{i}.mp4", square_video(colors[i % 3]), fps=8)
        (root / f"clip{i}.txt").write_text(f"a {['red', 'blue', 'green'][i % 3]} square moving right\n")
    for i in range(images):
        Image.fromarray(square_video(colors[(i + 1) % 3], frames=1)[0]).save(root / f"still{i}.png")
        (root / f"still{i}.txt").write_text("a square on grey")
    return root

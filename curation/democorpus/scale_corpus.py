"""Many short, distinct, cheap-to-render videos: the corpus for scale runs (driver memory, clusters).

Each video is 128×96, 30 frames at 12 fps: a textured square drifting over a flat colour, seeded by
its index so no two files share content. Odd indices have a hard cut in the middle (two clips),
even ones are one shot (one clip).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from media.video import write_video

FRAMES, FPS, WIDTH, HEIGHT = 30, 12.0, 128, 96


def scale_video_frames(index: int) -> list[np.ndarray]:
    """The RGB frames (HEIGHT, WIDTH, 3) uint8 of video `index`."""
    rng = np.random.default_rng(index)
    colours = rng.integers(0, 255, (2, 3)).astype(np.uint8)
    texture = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    frames = []
    for t in range(FRAMES):
        scene = 1 if index % 2 and t >= FRAMES // 2 else 0
        frame = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        frame[:] = colours[scene]
        x = (5 + 3 * t + 17 * scene) % (WIDTH - 24)
        y = (10 + t + 29 * scene) % (HEIGHT - 24)
        frame[y : y + 24, x : x + 24] = texture
        frames.append(frame)
    return frames


def render_scale_corpus(folder: Path, videos: int) -> list[Path]:
    """`folder/v000000.mp4` … for `videos` indices (files already there are kept); their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(videos):
        path = folder / f"v{index:06d}.mp4"
        if not path.exists():
            write_video(path, scale_video_frames(index), FPS)
        paths.append(path)
    return paths

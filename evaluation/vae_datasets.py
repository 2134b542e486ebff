"""Readers for the VAE reconstruction benchmarks, each applying its protocol's preprocessing.

Protocols (HunyuanVideo report, Table 1):

ImageNet val 256×256 — `imagenet_val_images(root)`
  Layout: `root/` holding the 50,000 val JPEGs either flat (`ILSVRC2012_val_00000001.JPEG`) or in
  class folders (`root/n01440764/*.JPEG`), or the same under `root/val/`. Files are taken in sorted
  path order (`limit` keeps the first N). Each image is converted to RGB, resized so its short side is
  256 px (PIL bicubic, which antialiases when shrinking), centre-cropped to 256×256 and kept as uint8.

MCL-JCV 33×360×640 — `mcl_jcv_sequences(root)`
  Layout: `root/` holding the 30 sequences `videoSRC01…videoSRC30` either as raw 8-bit YUV 4:2:0
  planar files (`videoSRC01_1920x1080_30.yuv`; width×height parsed from the name, 1920×1080 if
  absent) or as video files (`.mp4`, `.mkv`, `.y4m`) decoded to yuv420p. Frames: the first 33.
  Colour: BT.709 limited range (Y 16–235, UV 16–240) → RGB, chroma upsampled bilinearly, rounded
  to uint8 — the same arithmetic for raw and container inputs (we never let a decoder guess the
  matrix). Then short side → 360 px (PIL bicubic; 1920×1080 → 640×360 exactly) and centre crop
  to 360×640.

PSNR on both (see `evaluation.vae_benchmarks`) is computed on uint8 after the VAE output is
rounded to [0, 255]; ImageNet averages per-image PSNR, MCL-JCV averages per-frame PSNR over all
frames of all sequences.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".y4m", ".mov", ".avi"}
_DIMS = re.compile(r"(\d{2,5})x(\d{2,5})")


class DatasetLayoutError(FileNotFoundError):
    """A benchmark folder does not have the documented layout."""


def resize_short_side_center_crop(image: np.ndarray, short_side: int, crop_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 → (crop_h, crop_w, 3) uint8: bicubic resize of the short side, centre crop."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    new_w, new_h = max(crop_hw[1], round(w * scale)), max(crop_hw[0], round(h * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC))
    top, left = (new_h - crop_hw[0]) // 2, (new_w - crop_hw[1]) // 2
    return resized[top : top + crop_hw[0], left : left + crop_hw[1]]


def imagenet_val_files(root: str | Path) -> list[Path]:
    """Sorted image paths of an ImageNet-val folder (flat or class folders; `root/val` accepted)."""
    root = Path(root)
    if (root / "val").is_dir():
        root = root / "val"
    if not root.is_dir():
        raise DatasetLayoutError(f"ImageNet val: {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DatasetLayoutError(f"ImageNet val: no .JPEG/.jpg/.png images under {root}")
    return files


def imagenet_val_images(
    root: str | Path, size: int = 256, limit: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (relative name, (size, size, 3) uint8 RGB) per the ImageNet 256² protocol."""
    base = Path(root) / "val" if (Path(root) / "val").is_dir() else Path(root)
    for path in imagenet_val_files(root)[:limit]:
        with Image.open(path) as img:
            rgb = np.asarray(img.convert("RGB"))
        yield str(path.relative_to(base)), resize_short_side_center_crop(rgb, size, (size, size))


def yuv420_to_rgb_bt709(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.709 limited-range Y (H, W), U/V (H/2, W/2) uint8 planes → (H, W, 3) uint8 RGB."""
    h, w = y.shape
    u_full = cv2.resize(u, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64) - 128.0
    v_full = cv2.resize(v, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float64) - 128.0
    luma = (y.astype(np.float64) - 16.0) * (255.0 / 219.0)
    chroma_scale = 255.0 / 224.0
    # Kr = 0.2126, Kb = 0.0722 (ITU-R BT.709); coefficients of the inverse matrix.
    r = luma + chroma_scale * 1.5748 * v_full
    g = luma - chroma_scale * (0.1873 * u_full + 0.4681 * v_full)
    b = luma + chroma_scale * 1.8556 * u_full
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def _split_i420(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat or (H·3/2, W) I420 buffer → Y (H, W), U, V (H/2, W/2)."""
    flat = frame.reshape(-1)
    y_size, c_size = width * height, (width // 2) * (height // 2)
    y = flat[:y_size].reshape(height, width)
    u = flat[y_size : y_size + c_size].reshape(height // 2, width // 2)
    v = flat[y_size + c_size : y_size + 2 * c_size].reshape(height // 2, width // 2)
    return y, u, v


def read_yuv420_raw(path: str | Path, width: int, height: int, frames: int) -> np.ndarray:
    """The first `frames` frames of a raw 8-bit I420 file → (T, H, W, 3) uint8 RGB (BT.709)."""
    frame_bytes = width * height * 3 // 2
    size = Path(path).stat().st_size
    if size < frame_bytes * frames:
        raise DatasetLayoutError(
            f"MCL-JCV: {path} holds {size // frame_bytes} frames of {width}x{height} I420, need {frames}"
        )
    data = np.fromfile(path, dtype=np.uint8, count=frame_bytes * frames).reshape(frames, frame_bytes)
    return np.stack([yuv420_to_rgb_bt709(*_split_i420(f, width, height)) for f in data])


def read_video_yuv420(path: str | Path, frames: int) -> np.ndarray:
    """The first `frames` frames of a container video, decoded to yuv420p → (T, H, W, 3) uint8 (BT.709)."""
    from media.video import VideoReader, VideoReadError

    try:
        with VideoReader(path) as reader:
            return np.stack(
                [
                    yuv420_to_rgb_bt709(*_split_i420(frame.array(pixel_format="yuv420p"), *frame.size))
                    for frame in reader.frames(0, frames)
                ]
            )
    except VideoReadError as error:
        raise DatasetLayoutError(f"MCL-JCV: the protocol needs {frames} frames: {error}") from error


def mcl_jcv_files(root: str | Path) -> list[Path]:
    """Sorted sequence files (raw .yuv preferred over a container file of the same sequence)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"MCL-JCV: {root} is not a directory")
    by_sequence: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix != ".yuv" and suffix not in VIDEO_SUFFIXES:
            continue
        key = path.stem.split("_")[0]
        if key not in by_sequence or suffix == ".yuv":
            by_sequence[key] = path
    if not by_sequence:
        raise DatasetLayoutError(f"MCL-JCV: no .yuv or video files under {root}")
    return [by_sequence[k] for k in sorted(by_sequence)]


def mcl_jcv_sequences(
    root: str | Path, frames: int = 33, height: int = 360, width: int = 640, limit: int | None = None
) -> Iterator[tuple[str, np.ndarray]]:
    """Yield (sequence name, (frames, height, width, 3) uint8 RGB) per the MCL-JCV protocol."""
    for path in mcl_jcv_files(root)[:limit]:
        if path.suffix.lower() == ".yuv":
            dims = _DIMS.search(path.stem)
            w, h = (int(dims.group(1)), int(dims.group(2))) if dims else (1920, 1080)
            video = read_yuv420_raw(path, w, h, frames)
        else:
            video = read_video_yuv420(path, frames)
        yield (
            path.stem.split("_")[0],
            np.stack([resize_short_side_center_crop(f, height, (height, width)) for f in video]),
        )

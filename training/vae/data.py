"""Training batches for the VAE: random clips (random frame stride 1..8) and images from files.

Inputs: a list of media paths (videos: .mp4/.mkv/.avi/.mpg/.mov/.webm; images: .jpg/.png), given as a
Python list, a directory, a text file with one path per line, or a parquet table with a `path` (or
`clip_path`) column; or `MediaItem`s — frame ranges of source videos — which `clips_from_tier_tables`
reads from the workspace tables (`clips` ⋈ `tiers`, one tier column such as `tier_256p`).

Exact resume: the batch of optimizer step k on worker r is a pure function of (seed, r, k): every
random choice draws from `np.random.default_rng([seed, rank, step])`. The data position is therefore
the step itself, and a resumed run sees exactly the batches it would have seen.

Output tensors: videos (B, 3, F, H, W), images (B, 3, 1, H, W), float32 in [-1, 1].
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from einops import rearrange

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mpg", ".mpeg", ".mov", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_DECODED_FRAMES = 8 * 128 + 1  # enough for the longest clip at the largest stride


class TrainingDataError(ValueError):
    """The training data list is empty, unreadable, or names files that are not media."""


@dataclass(frozen=True)
class MediaItem:
    """A media file, or the frame range [start_frame, end_frame) of a video (a curated clip)."""

    path: Path
    start_frame: int = 0
    end_frame: int | None = None


def clips_from_tier_tables(tables: Path, tier: str = "tier_256p") -> list[MediaItem]:
    """Clips of `tier` from the workspace tables folder: `clips` rows whose clip is in the tier.

    Each clip starts at its sharpest start frame (the `start_frame_sharpest` column) and ends at its
    exclusive `end_frame`, in the raw video the clips table names.
    """
    from media.tables import read_table, table_path

    def rows(name: str) -> list[dict[str, Any]]:
        path = table_path(tables, name)
        if not path.exists():
            raise TrainingDataError(
                f"table {name} not found under {tables}; materialize the `{name}` asset first"
            )
        return read_table(path).to_pylist()

    members = {r["clip_id"] for r in rows("tiers") if r.get(tier)}
    items = []
    for clip in rows("clips"):
        if clip["clip_id"] not in members:
            continue
        start = max(int(clip["start_frame"]), int(clip.get("start_frame_sharpest") or 0))
        items.append(MediaItem(Path(clip["source_path"]), start, int(clip["end_frame"])))
    if not items:
        raise TrainingDataError(f"no clips in {tier} under {tables}")
    return items


def resolve_media_paths(data: Sequence[str | Path] | str | Path) -> list[Path]:
    """Expand a list / directory / .txt list / .parquet table into sorted existing media paths."""
    if isinstance(data, str | Path):
        source = Path(data)
        if source.is_dir():
            paths = [
                p for p in sorted(source.rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES
            ]
        elif source.suffix == ".parquet":
            from media.tables import read_table

            table = read_table(source)
            column = next((c for c in ("path", "clip_path") if c in table.column_names), None)
            if column is None:
                raise TrainingDataError(
                    f"training data {source}: parquet has no 'path' or 'clip_path' column"
                )
            paths = [Path(p) for p in table.column(column).to_pylist()]
        elif source.suffix == ".txt":
            paths = [Path(line.strip()) for line in source.read_text().splitlines() if line.strip()]
        elif source.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
            paths = [source]
        else:
            raise TrainingDataError(f"training data {source}: not a directory, .txt, .parquet or media file")
    else:
        paths = [Path(p) for p in data]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise TrainingDataError(f"training data: {len(missing)} files missing, e.g. {missing[0]}")
    if not any(p.suffix.lower() in VIDEO_SUFFIXES for p in paths):
        raise TrainingDataError(f"training data: no video files among {len(paths)} paths")
    return paths


def _decode(item: MediaItem, short_side: int) -> np.ndarray:
    """(T, H', W', 3) uint8 RGB of the item's frames (at most MAX_DECODED_FRAMES), short side resized to
    `short_side` (area filter). Videos are decoded once, seeking to the item's start, at that size."""
    path = item.path
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise TrainingDataError(f"training data: cannot read image {path}")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        size = _short_side_size(image.shape[1], image.shape[0], short_side)
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)[None]
    from media.video import VideoReader, VideoReadError

    try:
        with VideoReader(path) as reader:
            size = _short_side_size(*reader.size, short_side)
            # A whole file (no end frame) gives its first MAX_DECODED_FRAMES frames, or all of a
            # shorter one; decoding is lazy, so `islice` stops it there.
            decoded = islice(reader.frames(item.start_frame, item.end_frame), MAX_DECODED_FRAMES)
            return np.stack([frame.array(size) for frame in decoded])
    except VideoReadError as error:
        raise TrainingDataError(f"training data: {error}") from error


def _short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) scaled so the short side is `short_side`."""
    scale = short_side / min(height, width)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


class MediaSampler:
    """Draws reproducible video and image batches from media files (see module docstring)."""

    def __init__(
        self,
        paths: Sequence[Path | MediaItem],
        seed: int = 0,
        rank: int = 0,
        frame_stride_max: int = 8,
        cache_size: int = 64,
        scale_jitter: float = 1.25,
    ) -> None:
        items = [p if isinstance(p, MediaItem) else MediaItem(Path(p)) for p in paths]
        self.videos = [i for i in items if i.path.suffix.lower() in VIDEO_SUFFIXES]
        self.images = [i for i in items if i.path.suffix.lower() in IMAGE_SUFFIXES]
        if not self.videos:
            raise TrainingDataError("MediaSampler: no videos")
        self.seed, self.rank = seed, rank
        self.frame_stride_max = frame_stride_max
        self.scale_jitter = scale_jitter
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[MediaItem, int], np.ndarray] = OrderedDict()

    def _rng(self, step: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.rank, step, stream])

    def _media(self, item: MediaItem, short_side: int) -> np.ndarray:
        key = (item, short_side)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        media = _decode(item, short_side)
        self._cache[key] = media
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return media

    def _crop(self, frames: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """Random scale in [1, jitter] of the minimal cover, random position, area resize, random flip."""
        h, w = frames.shape[1:3]
        cover = min(h / height, w / width)
        k = rng.uniform(1.0, max(1.0, min(self.scale_jitter, cover))) if cover > 1 else 1.0
        crop_h, crop_w = min(h, round(height * cover / k)), min(w, round(width * cover / k))
        top, left = int(rng.integers(0, h - crop_h + 1)), int(rng.integers(0, w - crop_w + 1))
        window = frames[:, top : top + crop_h, left : left + crop_w]
        out = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in window])
        return out[:, :, ::-1] if rng.random() < 0.5 else out

    @staticmethod
    def _to_tensor(batch: list[np.ndarray]) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(np.stack(batch)))
        return rearrange(x, "b f h w c -> b c f h w").float() / 127.5 - 1.0

    def video_batch(self, step: int, batch: int, frames: int, height: int, width: int) -> torch.Tensor:
        """(batch, 3, frames, height, width) in [-1, 1]: random videos, stride 1..max, random crops."""
        rng = self._rng(step, 0)
        short_side = round(max(height, width) * self.scale_jitter)
        clips = []
        for _ in range(batch):
            video = self._media(self.videos[int(rng.integers(len(self.videos)))], short_side)
            stride = int(rng.integers(1, self.frame_stride_max + 1))
            # Shorter videos get the largest stride that fits; a video shorter than the clip holds its
            # last frame (a still tail) rather than being skipped, so any list of clips works.
            stride = max(1, min(stride, (len(video) - 1) // max(frames - 1, 1)))
            span = (frames - 1) * stride + 1
            start = int(rng.integers(0, max(len(video) - span, 0) + 1))
            index = np.minimum(start + stride * np.arange(frames), len(video) - 1)
            clips.append(self._crop(video[index], height, width, rng))
        return self._to_tensor(clips)

    def image_batch(self, step: int, batch: int, height: int, width: int) -> torch.Tensor:
        """(batch, 3, 1, height, width): image files if any were given, else single video frames."""
        rng = self._rng(step, 1)
        short_side = round(max(height, width) * self.scale_jitter)
        pool = self.images or self.videos
        items = []
        for _ in range(batch):
            media = self._media(pool[int(rng.integers(len(pool)))], short_side)
            frame = media[int(rng.integers(len(media)))][None]
            items.append(self._crop(frame, height, width, rng))
        return self._to_tensor(items)

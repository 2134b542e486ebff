"""A LoRA data folder: videos and/or images, each with a same-name `.txt` caption (musubi-tuner /
diffusion-pipe layout), read into `ClipRecord`s, and its data version (a hash of the folder).

    style/
      clip_a.mp4   clip_a.txt      "a paper boat drifting, watercolour style"
      still.png    still.txt

Bad folders fail with `LoRADataError`, one line naming the folder or file: no media, no captions,
a media file without a caption, an empty caption, an unreadable video or image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from training.dit.latent_cache import ClipRecord

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})


class LoRADataError(ValueError):
    """A LoRA data folder that cannot be trained on; the message names the folder or file."""


@dataclass(frozen=True)
class LoRADataset:
    """The folder's clips (images are 1-frame clips) and its version (SHA-256 of names, bytes, captions)."""

    root: Path
    records: tuple[ClipRecord, ...]
    videos: int
    images: int
    data_version: str


def _caption(media: Path) -> str:
    caption_file = media.with_suffix(".txt")
    if not caption_file.is_file():
        raise LoRADataError(f"{media}: no caption file {caption_file.name} beside it")
    caption = " ".join(caption_file.read_text(encoding="utf-8", errors="replace").split())
    if not caption:
        raise LoRADataError(f"{caption_file}: the caption is empty")
    return caption


def _frame_count(path: Path) -> int:
    # Imported here: the trainer itself never decodes video (the latent cache does, once).
    from media.video import VideoReader, VideoReadError

    try:
        with VideoReader(path) as reader:
            count = reader.frame_count
            reader.size  # noqa: B018 (decodes the first frame: a corrupt file fails here, by name)
    except VideoReadError as err:
        raise LoRADataError(f"{path}: cannot be read ({err.reason})") from err
    if count < 1:
        raise LoRADataError(f"{path}: has no frames")
    return count


def data_version(root: Path, files: list[Path]) -> str:
    """`loradata:<16 hex>` over each file's relative name and bytes (media and caption)."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"loradata:{digest.hexdigest()[:16]}"


def read_lora_folder(root: str | Path, videos_only: bool = False) -> LoRADataset:
    """The clips of folder `root` (see module docstring); `videos_only` (I2V) leaves images out."""
    root = Path(root)
    if not root.is_dir():
        raise LoRADataError(f"{root}: the LoRA data folder does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    media = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES]
    if not media:
        raise LoRADataError(
            f"{root}: no videos or images ({', '.join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))})"
        )
    if not any(p.suffix == ".txt" for p in files):
        raise LoRADataError(f"{root}: no captions; put a same-name .txt beside each video/image")
    records: list[ClipRecord] = []
    videos = images = 0
    for path in media:
        is_video = path.suffix.lower() in VIDEO_SUFFIXES
        if videos_only and not is_video:
            continue
        caption = _caption(path)
        count = _frame_count(path)
        clip_id = str(path.relative_to(root))
        records.append(ClipRecord(clip_id, path, 0, count, caption))
        videos += is_video
        images += not is_video
    if not records:
        raise LoRADataError(
            f"{root}: image-to-video LoRA training needs videos; the folder holds only images"
        )
    used = [r.video_path for r in records] + [r.video_path.with_suffix(".txt") for r in records]
    return LoRADataset(root, tuple(records), videos, images, data_version(root, used))

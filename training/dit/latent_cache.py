"""Latent cache: each clip encoded once per bucket by the VAE, with its prompt's text encodings.

Input is a list of `ClipRecord` (clip id, video path, start/end frame, prompt, balancing weight):
the tier / caption / sft_set tables or a demo list in tests produce it. Output is one safetensors
shard per (clip, bucket) under

    root/vae-<vae_version>__text-<encoder_version>/<bucket name>/<clip id>.safetensors
        mean, std     (C, T, h, w) float32 latent posterior, already × the VAE scaling factor
        text_states   (L, D_t) float32; text_mask (L,) uint8 (right-padded); text_pooled (D_p,)
                      of the prompt as serving reads it: cut at a word boundary to the encoder's
                      token budget (model.prompt_fit), so a long caption trains on what it generates from
        metadata      clip_id, prompt_sha, vae_version, encoder_version, bucket

The key is (clip, bucket, VAE version, encoder version): a shard is reused only when all four
match and the prompt hash is unchanged, so a new VAE or text encoder lands in a new version folder
and everything is re-encoded (the old folders are deleted by `prune_stale`). Versions default to
content fingerprints of the modules' weights; pass a registry version string at scale instead.
Writes are atomic (temp file + os.replace).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from model.prompt_fit import fit_prompt
from model.text import TextEncoder
from model.vae import CausalVAE3D
from training.dit.buckets import Bucket, SampleRef, assign_bucket
from training.dit.config import StageSpec

EMPTY_PROMPT_FILE = "empty_prompt.safetensors"


class LatentCacheError(ValueError):
    """A clip record cannot be read or encoded; the message names the clip and the cause."""


@dataclass(frozen=True)
class ClipRecord:
    """One clip to train on. Frames [start_frame, end_frame) of `video_path`; weight > 0 balances concepts."""

    clip_id: str
    video_path: Path
    start_frame: int
    end_frame: int
    prompt: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.end_frame <= self.start_frame or self.start_frame < 0:
            raise LatentCacheError(
                f"clip {self.clip_id}: frame range [{self.start_frame}, {self.end_frame}) is empty"
            )
        if not self.weight > 0:
            raise LatentCacheError(f"clip {self.clip_id}: balancing weight {self.weight} must be > 0")


@dataclass
class CacheStats:
    encoded: int = 0
    reused: int = 0
    skipped: list[str] = field(default_factory=list)  # clips too short for any frame bucket


def fingerprint(module: nn.Module, extra: str = "") -> str:
    """12 hex digits of SHA-256 over the module's state dict (names, shapes, bytes) and `extra`."""
    digest = hashlib.sha256(extra.encode())
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]


def _prompt_sha(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()[:16]


def _safe_name(clip_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in clip_id)


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resize_crop(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H0, W0, 3) uint8 -> (T, height, width, 3): scale to cover, then centre crop."""
    h0, w0 = frames.shape[1:3]
    scale = max(height / h0, width / w0)
    new_h, new_w = max(height, round(h0 * scale)), max(width, round(w0 * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.stack(
        [
            cv2.resize(f, (new_w, new_h), interpolation=interp)[top : top + height, left : left + width]
            for f in frames
        ]
    )


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) float in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    return rearrange(x, "t h w c -> 1 c t h w")


def stage_buckets(
    record_size: tuple[int, int], frames: int, stage: StageSpec, aspect_ratios: Sequence[str]
) -> list[Bucket]:
    """The buckets a clip of (width, height) and `frames` frames enters in `stage`."""
    width, height = record_size
    buckets: list[Bucket] = []
    for resolution in stage.resolutions:
        if stage.image_ratio > 0:
            image = assign_bucket(width, height, 1, resolution, (1,), aspect_ratios)
            assert image is not None
            buckets.append(image)
        if stage.frame_buckets:
            video = assign_bucket(width, height, frames, resolution, stage.frame_buckets, aspect_ratios)
            if video is not None:
                buckets.append(video)
    return buckets


def read_clip(
    record: ClipRecord, stage: StageSpec, aspect_ratios: Sequence[str]
) -> tuple[np.ndarray, list[Bucket]]:
    """The clip's first frames (as many as the stage's longest bucket) and the buckets it enters.

    Decoded once, seeking to the clip's start, at the smallest size that still covers every
    bucket (never above the video's own size), so no full-size frames are held. A bucket's pixels
    are `resize_crop(frames[: bucket.frames], *bucket.size)` of these: that is what the cache
    encodes, and what `training.dit.records.frames_as_trained` shows (the same pixels: a cover
    size rounded another way shifts the crop by a pixel).
    """
    # Imported here: readers of the cache (trainer workers, GPU benchmarks) need no video decoder.
    from media.video import VideoReader, VideoReadError

    count = min(max(stage.frame_buckets, default=1), record.end_frame - record.start_frame)
    try:
        with VideoReader(record.video_path) as reader:
            width, height = reader.size
            buckets = stage_buckets((width, height), count, stage, aspect_ratios)
            cover = max((max(b.size[0] / height, b.size[1] / width) for b in buckets), default=1.0)
            size = None if cover >= 1 else (math.ceil(width * cover), math.ceil(height * cover))
            frames = reader.read(record.start_frame, record.start_frame + count, size)
    except VideoReadError as err:
        raise LatentCacheError(f"clip {record.clip_id}: {err}") from err
    return frames, buckets


class LatentCache:
    """Builds and reads the cache of one (VAE, text encoder) pair (see module docstring)."""

    def __init__(
        self,
        root: str | Path,
        vae: CausalVAE3D,
        text_encoder: TextEncoder,
        vae_version: str | None = None,
        encoder_version: str | None = None,
        aspect_ratios: Sequence[str] = ("1:1",),
        device: torch.device | str = "cpu",
    ) -> None:
        self.root = Path(root)
        self.vae, self.text_encoder = vae.eval(), text_encoder.eval()
        self.vae_version = vae_version or fingerprint(vae, str(vae.config.to_dict()))
        # ":fit": the encodings are of the fitted prompt; caches of the whole prompt are stale.
        self.encoder_version = encoder_version or fingerprint(
            text_encoder, f"{type(text_encoder).__name__}:{text_encoder.max_length}:fit"
        )
        self.aspect_ratios = tuple(aspect_ratios)
        self.device = torch.device(device)

    @property
    def version_dir(self) -> Path:
        return self.root / f"vae-{self.vae_version}__text-{self.encoder_version}"

    def shard_path(self, clip_id: str, bucket: Bucket) -> Path:
        return self.version_dir / bucket.name / f"{_safe_name(clip_id)}.safetensors"

    def prune_stale(self) -> list[Path]:
        """Delete version folders of other VAE/encoder versions; returns what was deleted."""
        import shutil

        stale = [p for p in self.root.glob("vae-*__text-*") if p.is_dir() and p != self.version_dir]
        for path in stale:
            shutil.rmtree(path)
        return stale

    def stage_buckets(self, record_size: tuple[int, int], frames: int, stage: StageSpec) -> list[Bucket]:
        """The buckets a clip of (width, height) and `frames` frames enters in `stage`."""
        return stage_buckets(record_size, frames, stage, self.aspect_ratios)

    def _fresh(self, path: Path, prompt: str) -> bool:
        if not path.is_file():
            return False
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
        return meta.get("prompt_sha") == _prompt_sha(prompt)

    @torch.no_grad()
    def _encode_text(self, prompts: list[str]) -> list[dict[str, torch.Tensor]]:
        """Encodings of each prompt as serving reads it (`fit_prompt`: word-boundary cut to the budget)."""
        enc = self.text_encoder.encode([fit_prompt(self.text_encoder, p).text for p in prompts])
        return [
            {
                "text_states": enc.states[i].float().cpu(),
                "text_mask": enc.mask[i].to(torch.uint8).cpu(),
                "text_pooled": enc.pooled[i].float().cpu(),
            }
            for i in range(len(prompts))
        ]

    @torch.no_grad()
    def _encode_video(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        posterior = self.vae.encode(pixels.to(self.device))
        scale = self.vae.config.scaling_factor
        return {
            "mean": (posterior.mean[0] * scale).float().cpu(),
            "std": (posterior.std[0] * scale).float().cpu(),
        }

    def empty_prompt(self) -> dict[str, torch.Tensor]:
        """Text encodings of '' (used for the 10% text dropout), cached beside the shards."""
        path = self.version_dir / EMPTY_PROMPT_FILE
        if not path.is_file():
            _atomic_save(self._encode_text([""])[0], path, {"encoder_version": self.encoder_version})
        return load_file(str(path))

    def build(
        self, records: Sequence[ClipRecord], stage: StageSpec, progress: bool = True
    ) -> tuple[list[SampleRef], CacheStats]:
        """Encode what is missing for `stage`; returns the stage's samples (keys = shard paths) and counts."""
        stats = CacheStats()
        samples: list[SampleRef] = []
        self.empty_prompt()
        for record in tqdm(records, desc=f"latents {stage.name}", disable=not progress):
            frames, buckets = read_clip(record, stage, self.aspect_ratios)
            if not any(not b.is_image for b in buckets) and stage.image_ratio < 1.0:
                stats.skipped.append(record.clip_id)
            text: dict[str, torch.Tensor] | None = None
            for bucket in buckets:
                path = self.shard_path(record.clip_id, bucket)
                if self._fresh(path, record.prompt):
                    stats.reused += 1
                else:
                    if text is None:
                        text = self._encode_text([record.prompt])[0]
                    pixels = frames_to_tensor(resize_crop(frames[: bucket.frames], *bucket.size))
                    meta = {
                        "clip_id": record.clip_id,
                        "prompt_sha": _prompt_sha(record.prompt),
                        "vae_version": self.vae_version,
                        "encoder_version": self.encoder_version,
                        "bucket": bucket.name,
                    }
                    _atomic_save({**self._encode_video(pixels), **text}, path, meta)
                    stats.encoded += 1
                samples.append(SampleRef(str(path), bucket, record.weight))
        return samples, stats


@dataclass
class LatentBatch:
    """latents (B, C, T, H, W) (a posterior sample or mean); text_states (B, L, D_t); text_mask (B, L) bool; text_pooled (B, D_p)."""

    latents: torch.Tensor
    text_states: torch.Tensor
    text_mask: torch.Tensor
    text_pooled: torch.Tensor


class ShardCache:
    """Shards read by training steps, kept in memory up to `max_bytes` (least recently used out first).

    A stage revisits its shards every epoch; re-reading them costs about 0.3 ms each, which at a
    batch of 256 small images outweighs a GPU step. An entry is keyed by the file's path, inode,
    size and mtime, so a shard rewritten in place (a new prompt: `_atomic_save` replaces the file)
    is read again. Tensors handed out are shared: callers stack them and never write into them.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[tuple[int, int, int], dict[str, torch.Tensor], int]] = (
            OrderedDict()
        )

    def get(self, path: str) -> dict[str, torch.Tensor]:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        entry = self._entries.get(path)
        if entry is not None and entry[0] == stamp:
            self._entries.move_to_end(path)
            self.hits += 1
            return entry[1]
        self.misses += 1
        shard = load_file(path)
        size = sum(t.numel() * t.element_size() for t in shard.values())
        if entry is not None:
            self.bytes -= self._entries.pop(path)[2]
        if size <= self.max_bytes:
            self._entries[path] = (stamp, shard, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self.bytes -= self._entries.popitem(last=False)[1][2]
        return shard


def load_batch(
    keys: Sequence[str],
    generator: torch.Generator | None,
    sample_posterior: bool,
    cache: ShardCache | None = None,
) -> LatentBatch:
    """Stack the shards `keys` (all of one bucket); sample z = mean + std·ε when `sample_posterior`.

    With `cache` (kept by the caller across steps) shards are read through it, else from disk.
    """
    shards = [cache.get(k) if cache is not None else load_file(k) for k in keys]
    mean = torch.stack([s["mean"] for s in shards])
    latents = mean
    if sample_posterior:
        std = torch.stack([s["std"] for s in shards])
        latents = mean + std * torch.randn(mean.shape, generator=generator)
    return LatentBatch(
        latents,
        torch.stack([s["text_states"] for s in shards]),
        torch.stack([s["text_mask"] for s in shards]).bool(),
        torch.stack([s["text_pooled"] for s in shards]),
    )

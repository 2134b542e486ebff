"""Buckets (aspect ratio × duration × resolution) and the single-bucket batch sampler.

A bucket fixes the pixel shape of every sample in it, so a batch from one bucket stacks without
padding. Pixel sizes are multiples of 16 (VAE 8× × DiT patch 2×); `resolution` r is an area: the
bucket holds ≈ r² pixels at its aspect ratio, so a 256 bucket at 16:9 is 192 × 336 (H × W).
Frames are 4n+1 (the causal VAE maps them to n+1 latent frames); an image is a 1-frame video.

The sampler draws each step's bucket with probability ∝ the summed balancing weight of its
samples (image buckets as a group get `image_ratio` of the steps), then the batch's samples within
the bucket ∝ weight, with replacement. Every draw is a pure function of (seed, step[, rank]): the
sampler's position is the step counter, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SPATIAL_MULTIPLE = 16  # VAE spatial ratio 8 × DiT patch 2
VAE_SPATIAL, VAE_TEMPORAL, PATCH = 8, 4, 2


class BucketError(ValueError):
    """A clip fits no bucket, or a bucket specification is malformed."""


def parse_aspect(aspect: str) -> float:
    """'16:9' -> 16/9 (width over height)."""
    try:
        w, h = (float(v) for v in aspect.split(":"))
    except ValueError as err:
        raise BucketError(f"aspect ratio {aspect!r} must look like 'W:H', e.g. '16:9'") from err
    if w <= 0 or h <= 0:
        raise BucketError(f"aspect ratio {aspect!r} must be positive")
    return w / h


@dataclass(frozen=True, order=True)
class Bucket:
    """Pixel shape (frames, height, width) of every sample in the bucket; `aspect` 'W:H' and area `resolution`."""

    resolution: int
    aspect: str
    frames: int

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels, multiples of 16, area ≈ resolution²."""
        ratio = parse_aspect(self.aspect)
        height = max(
            SPATIAL_MULTIPLE, round(self.resolution / math.sqrt(ratio) / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE
        )
        width = max(
            SPATIAL_MULTIPLE, round(self.resolution * math.sqrt(ratio) / SPATIAL_MULTIPLE) * SPATIAL_MULTIPLE
        )
        return height, width

    @property
    def is_image(self) -> bool:
        return self.frames == 1

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(T, H, W) of the latent: (frames − 1)/4 + 1, height/8, width/8."""
        height, width = self.size
        return (self.frames - 1) // VAE_TEMPORAL + 1, height // VAE_SPATIAL, width // VAE_SPATIAL

    @property
    def tokens(self) -> int:
        """Video tokens N of one sample (patch (1, 2, 2))."""
        t, h, w = self.latent_shape
        return t * (h // PATCH) * (w // PATCH)

    @property
    def name(self) -> str:
        height, width = self.size
        return f"r{self.resolution}_{self.aspect.replace(':', 'x')}_f{self.frames}_{height}x{width}"


def nearest_aspect(width: int, height: int, aspects: Sequence[str]) -> str:
    """The aspect ratio of `aspects` closest to width/height in log space."""
    if width <= 0 or height <= 0:
        raise BucketError(f"clip size {width}x{height} is not positive")
    target = math.log(width / height)
    return min(aspects, key=lambda a: abs(math.log(parse_aspect(a)) - target))


def assign_bucket(
    width: int,
    height: int,
    frames: int,
    resolution: int,
    frame_buckets: Sequence[int],
    aspects: Sequence[str],
) -> Bucket | None:
    """The video bucket of a clip: nearest aspect, longest frame bucket ≤ `frames`; None if too short."""
    fitting = [f for f in frame_buckets if f <= frames]
    if not fitting:
        return None
    return Bucket(resolution, nearest_aspect(width, height, aspects), max(fitting))


def micro_batch_sizes(
    buckets: Sequence[Bucket], tokens_per_batch: int, max_batch: int, overrides: dict[str, int] | None = None
) -> dict[Bucket, int]:
    """The per-bucket micro-batch table: max(1, min(max_batch, budget // tokens)), overridden by name."""
    overrides = overrides or {}
    table = {}
    for bucket in buckets:
        table[bucket] = overrides.get(bucket.name, max(1, min(max_batch, tokens_per_batch // bucket.tokens)))
    return table


@dataclass(frozen=True)
class SampleRef:
    """One training sample: `key` indexes the latent cache; `weight` is the balancing weight (> 0)."""

    key: str
    bucket: Bucket
    weight: float


@dataclass(frozen=True)
class MicroBatch:
    bucket: Bucket
    keys: tuple[str, ...]


class BucketSampler:
    """Draws, for step k, the micro-batches of that step (see module docstring).

    With `mix_resolutions`, a step holds one micro-batch per resolution (the bucket per resolution
    drawn as above); otherwise one micro-batch. The bucket choice depends on (seed, step) only, so
    every data-parallel rank trains the same bucket in a step (same shapes, balanced step times);
    the samples inside depend on (seed, step, rank).
    """

    def __init__(
        self,
        samples: Sequence[SampleRef],
        batch_sizes: dict[Bucket, int],
        image_ratio: float,
        mix_resolutions: bool = False,
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        if not samples:
            raise BucketError("the bucket sampler got no samples (is the stage's clip list empty?)")
        bad = [s.key for s in samples if not s.weight > 0]
        if bad:
            raise BucketError(f"balancing weights must be > 0; {len(bad)} are not, e.g. {bad[0]!r}")
        self.by_bucket: dict[Bucket, list[SampleRef]] = defaultdict(list)
        for sample in samples:
            self.by_bucket[sample.bucket].append(sample)
        missing = [b.name for b in self.by_bucket if b not in batch_sizes]
        if missing:
            raise BucketError(f"no micro-batch size for buckets {missing}")
        self.batch_sizes = batch_sizes
        self.image_ratio = image_ratio
        self.mix_resolutions = mix_resolutions
        self.seed, self.rank = seed, rank
        self.buckets = sorted(self.by_bucket)
        self.resolutions = sorted({b.resolution for b in self.buckets})

    def bucket_probabilities(self, resolution: int | None = None) -> dict[Bucket, float]:
        """P(bucket) for one draw: ∝ summed weight, split image_ratio / 1 − image_ratio between images and videos."""
        pool = [b for b in self.buckets if resolution is None or b.resolution == resolution]
        mass = {b: sum(s.weight for s in self.by_bucket[b]) for b in pool}
        images = [b for b in pool if b.is_image]
        videos = [b for b in pool if not b.is_image]
        share_image = self.image_ratio if videos else 1.0
        if not images:
            share_image = 0.0
        probs: dict[Bucket, float] = {}
        for group, share in ((images, share_image), (videos, 1.0 - share_image)):
            total = sum(mass[b] for b in group)
            for b in group:
                probs[b] = share * mass[b] / total
        return probs

    def _draw_bucket(self, rng: np.random.Generator, resolution: int | None) -> Bucket:
        probs = self.bucket_probabilities(resolution)
        buckets = list(probs)
        p = np.array([probs[b] for b in buckets])
        return buckets[int(rng.choice(len(buckets), p=p / p.sum()))]

    def step_batches(self, step: int) -> list[MicroBatch]:
        """The micro-batches of optimizer step `step` (pure function of seed, step, rank)."""
        bucket_rng = np.random.default_rng([self.seed, step, 0])
        sample_rng = np.random.default_rng([self.seed, step, 1, self.rank])
        resolutions: list[int | None] = list(self.resolutions) if self.mix_resolutions else [None]
        batches = []
        for resolution in resolutions:
            bucket = self._draw_bucket(bucket_rng, resolution)
            pool = self.by_bucket[bucket]
            weights = np.array([s.weight for s in pool])
            picks = sample_rng.choice(len(pool), size=self.batch_sizes[bucket], p=weights / weights.sum())
            batches.append(MicroBatch(bucket, tuple(pool[int(i)].key for i in picks)))
        return batches

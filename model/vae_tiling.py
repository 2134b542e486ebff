"""Spatial-temporal tiled VAE encode/decode with overlapping tiles and linear blending.

Shape legend: B batch, C channels, F frames, H/W pixels; T, h, w latent frames/height/width.

Latent frame 0 stands for video frame 0; latent frame k >= 1 for frames 4k-3 .. 4k. A temporal tile
over latent frames [s, e) with s > 0 therefore decodes z[s-1 : e] and drops its first output frame
(the causal decoder treats a tile's first latent as a lone first frame), and encodes frames
[4s-4, 4e-3) and drops its first latent. Tiles overlap; in each overlap the two tiles are blended
with complementary linear ramps, and the result is normalised by the summed weights, so constant
regions stay exact. Each tile's output is accumulated straight into the result (no list of tiles
is kept), which bounds memory by one tile's activations plus the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from model.presets import PresetConfig

if TYPE_CHECKING:
    from model.vae import CausalVAE3D


@dataclass(frozen=True)
class TilingConfig(PresetConfig):
    """Tile sizes in *sample* (pixel / frame) units, as the official release states them.

    Attributes:
        tile_size: spatial tile edge in pixels (multiple of 8).
        tile_frames: temporal tile length in video frames (multiple of 4).
        overlap: fraction of a tile shared with its neighbour in space, in [0, 0.5).
        frame_overlap: the same in time (None: as `overlap`); each tile also decodes one extra
            latent frame of causal context before its start.
        accumulate_fp32: blend in float32 (exact) or in the model dtype (saves memory).
    """

    tile_size: int = 256
    tile_frames: int = 64
    overlap: float = 0.25
    frame_overlap: float | None = None
    accumulate_fp32: bool = True

    def __post_init__(self) -> None:
        overlaps = (self.overlap, self.overlap if self.frame_overlap is None else self.frame_overlap)
        if self.tile_size % 8 or self.tile_frames % 4 or not all(0 <= o < 0.5 for o in overlaps):
            raise ValueError(f"bad tiling {self}: tile_size % 8, tile_frames % 4 and overlaps in [0, 0.5)")

    def latent_tiles(self, ratio: int) -> tuple[int, int, int, int]:
        """(spatial tile, spatial overlap, temporal tile, temporal overlap) in latent units."""
        tile_hw, tile_t = self.tile_size // ratio, self.tile_frames // 4
        frame_overlap = self.overlap if self.frame_overlap is None else self.frame_overlap
        return tile_hw, round(tile_hw * self.overlap), tile_t, round(tile_t * frame_overlap)


# Measured on one H100 (bf16, benchmarks/model_gpu.py, 2026-11-25, channels-last inference path),
# decoding 129x720x1280 with the 884-16c-hy VAE: diffusers' default tiling 28.9 s at 5.48 GiB peak;
# "low-memory" 15.6 s at 3.9 GiB; "balanced" 12.6 s at 5.1 GiB (2.3x faster in less memory);
# "fast" 10.4 s at 7.3 GiB.
TilingConfig.PRESETS = {
    "official": TilingConfig(256, 64, overlap=0.25),
    "low-memory": TilingConfig(256, 32, overlap=0.25, frame_overlap=0.125, accumulate_fp32=False),
    "balanced": TilingConfig(320, 32, overlap=0.2, frame_overlap=0.125, accumulate_fp32=False),
    "fast": TilingConfig(384, 48, overlap=1 / 6, frame_overlap=1 / 12, accumulate_fp32=False),
}


def tile_starts(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) ranges of evenly spaced, equal tiles (<= `tile`) covering [0, length).

    Uses the fewest tiles that share at least `overlap` with each neighbour, then shrinks them to
    the size that spreads the overlap evenly (no thin last tile, no wasted overlap).
    """
    if length <= tile:
        return [(0, length)]
    overlap = min(overlap, tile - 1)
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    return [(s, s + size) for s in starts]


def _ramps(
    ranges: list[tuple[int, int]], length: int, device: torch.device
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-tile 1D blending weights over [start, end) and their sum over [0, length)."""
    weights = []
    total = torch.zeros(length, device=device)
    for i, (start, end) in enumerate(ranges):
        w = torch.ones(end - start, device=device)
        if i > 0 and ranges[i - 1][1] > start:
            n = ranges[i - 1][1] - start
            w[:n] = torch.minimum(w[:n], (torch.arange(n, device=device) + 0.5) / n)
        if i + 1 < len(ranges) and ranges[i + 1][0] < end:
            n = end - ranges[i + 1][0]
            w[-n:] = torch.minimum(w[-n:], 1 - (torch.arange(n, device=device) + 0.5) / n)
        weights.append(w)
        total[start:end] += w
    return weights, total


def _to_frames(latent_range: tuple[int, int]) -> tuple[int, int]:
    """Video frames [a, b) represented by latent frames [s, e)."""
    s, e = latent_range
    return (0 if s == 0 else 4 * s - 3), 4 * e - 3


def _blend_into(
    out: torch.Tensor, tile: torch.Tensor, where: tuple[slice, slice, slice], w: tuple[torch.Tensor, ...]
) -> None:
    weight = w[0][:, None, None] * w[1][None, :, None] * w[2][None, None, :]
    out[:, :, where[0], where[1], where[2]] += tile.to(out.dtype) * weight.to(out.dtype)


def _normalise(out: torch.Tensor, totals: tuple[torch.Tensor, ...]) -> None:
    for frame in range(out.shape[2]):
        out[:, :, frame] /= (totals[0][frame] * totals[1][:, None] * totals[2][None, :]).to(out.dtype)


def tiled_decode(vae: CausalVAE3D, z: torch.Tensor, tiling: TilingConfig) -> torch.Tensor:
    """z (B, C, T, h, w) -> video (B, 3, 4(T-1)+1, 8h, 8w), decoded tile by tile."""
    ratio = vae.config.spatial_ratio
    batch, _, frames_lat, h_lat, w_lat = z.shape
    tile_hw, overlap_hw, tile_t, overlap_t = tiling.latent_tiles(ratio)
    t_ranges = tile_starts(frames_lat, tile_t, overlap_t)
    h_ranges = tile_starts(h_lat, tile_hw, overlap_hw)
    w_ranges = tile_starts(w_lat, tile_hw, overlap_hw)
    frames, height, width = 4 * (frames_lat - 1) + 1, h_lat * ratio, w_lat * ratio
    f_ranges = [_to_frames(r) for r in t_ranges]
    hp_ranges = [(a * ratio, b * ratio) for a, b in h_ranges]
    wp_ranges = [(a * ratio, b * ratio) for a, b in w_ranges]
    dev = z.device
    (wt, tot_t), (wh, tot_h), (ww, tot_w) = (
        _ramps(r, n, dev) for r, n in ((f_ranges, frames), (hp_ranges, height), (wp_ranges, width))
    )
    dtype = torch.float32 if tiling.accumulate_fp32 else z.dtype
    out = torch.zeros(batch, vae.config.out_channels, frames, height, width, device=dev, dtype=dtype)
    for ti, (s, e) in enumerate(t_ranges):
        context = 1 if s > 0 else 0
        for hi, (h0, h1) in enumerate(h_ranges):
            for wi, (w0, w1) in enumerate(w_ranges):
                video = vae.decode_latents(z[:, :, s - context : e, h0:h1, w0:w1])[:, :, context:]
                where = (slice(*f_ranges[ti]), slice(*hp_ranges[hi]), slice(*wp_ranges[wi]))
                _blend_into(out, video, where, (wt[ti], wh[hi], ww[wi]))
                del video
    _normalise(out, (tot_t, tot_h, tot_w))
    return out.to(z.dtype)


def tiled_encode(vae: CausalVAE3D, video: torch.Tensor, tiling: TilingConfig) -> torch.Tensor:
    """video (B, 3, F, H, W) -> posterior parameters (B, 2C, T, h, w), encoded tile by tile."""
    ratio = vae.config.spatial_ratio
    batch, _, frames, height, width = video.shape
    frames_lat, h_lat, w_lat = (frames - 1) // 4 + 1, height // ratio, width // ratio
    tile_hw, overlap_hw, tile_t, overlap_t = tiling.latent_tiles(ratio)
    t_ranges = tile_starts(frames_lat, tile_t, overlap_t)
    h_ranges = tile_starts(h_lat, tile_hw, overlap_hw)
    w_ranges = tile_starts(w_lat, tile_hw, overlap_hw)
    dev = video.device
    (wt, tot_t), (wh, tot_h), (ww, tot_w) = (
        _ramps(r, n, dev) for r, n in ((t_ranges, frames_lat), (h_ranges, h_lat), (w_ranges, w_lat))
    )
    dtype = torch.float32 if tiling.accumulate_fp32 else video.dtype
    out = torch.zeros(
        batch, 2 * vae.config.latent_channels, frames_lat, h_lat, w_lat, device=dev, dtype=dtype
    )
    for ti, (s, e) in enumerate(t_ranges):
        context = 1 if s > 0 else 0
        f0, f1 = (4 * s - 4 if s > 0 else 0), 4 * e - 3
        for hi, (h0, h1) in enumerate(h_ranges):
            for wi, (w0, w1) in enumerate(w_ranges):
                clip = video[:, :, f0:f1, h0 * ratio : h1 * ratio, w0 * ratio : w1 * ratio]
                params = vae.encode_params(clip)[:, :, context:]
                _blend_into(
                    out, params, (slice(s, e), slice(h0, h1), slice(w0, w1)), (wt[ti], wh[hi], ww[wi])
                )
    _normalise(out, (tot_t, tot_h, tot_w))
    return out.to(video.dtype)

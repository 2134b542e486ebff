"""One row of signals per clip, from one decode of its source video.

Row fields (the `CLIP_SIGNALS_SCHEMA` in `curation.schemas` fixes names and types):
motion_mean / motion_p95 (px/frame at 256p), sharpness (Laplacian variance at 256p), brisque
(0-100, lower better), aesthetic (0-10) + aesthetic_model (which scorer), text_area (0-1),
watermark (0-1) + watermark_corner, border box (x0, y0, x1, y1 in source pixels) + border_ratio,
width/height/fps/duration_s, embedding (1280 floats, L2-normalised), phash (16 hex digits), and
timing_* (seconds spent per signal group, for the speed report).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from curation.config import SignalConfig
from curation.decode import DecodedVideo
from curation.embedding import EMBEDDING_MODEL_NAME, embed_frames, perceptual_hashes
from curation.ocr import text_area_ratio
from curation.scenes import Clip
from curation.signals import (
    border_box,
    border_ratio,
    motion_of,
    sample_indices,
    sharpness_of,
    watermark_score,
)
from media.image_quality import brisque, load_aesthetic_scorer

CHEAP_SIGNALS = ("motion", "sharpness", "borders", "watermark", "phash")
EXPENSIVE_SIGNALS = ("brisque", "aesthetic", "ocr", "embedding")


def _full_frames(video: DecodedVideo, clip: Clip, count: int) -> list[np.ndarray]:
    """Up to `count` kept full-resolution frames inside the clip, spread over it (never empty)."""
    inside = [i for i in sorted(video.full) if clip.start_frame <= i < clip.end_frame]
    if not inside:
        # Short clip between two kept frames: upscale the analysis frame instead.
        import cv2

        middle = video.small[(clip.start_frame + clip.end_frame) // 2]
        return [cv2.resize(middle, (video.width, video.height), interpolation=cv2.INTER_LINEAR)]
    picks = [inside[int(round(k))] for k in np.linspace(0, len(inside) - 1, min(count, len(inside)))]
    return [video.full[i] for i in dict.fromkeys(picks)]


def clip_signal_row(
    video: DecodedVideo, clip: Clip, config: SignalConfig, cheap_only: bool = False
) -> dict[str, Any]:
    """All signals of one clip (see the module docstring); `cheap_only` skips the expensive group."""
    frames = video.small
    timing: dict[str, float] = {}
    tic = time.perf_counter()
    indices = sample_indices(clip.start_frame, clip.end_frame, config.persistence_frames)
    box = border_box(frames, indices, config.border_max_luma, config.border_max_std)
    timing["borders"] = time.perf_counter() - tic

    tic = time.perf_counter()
    motion = motion_of(
        frames,
        clip.start_frame,
        clip.end_frame,
        config.motion_pairs,
        box,
        config.motion_span,
        config.motion_fast,
        config.motion_contrast,
    )
    timing["motion"] = time.perf_counter() - tic

    tic = time.perf_counter()
    sharpness = sharpness_of(frames, indices, box)
    timing["sharpness"] = time.perf_counter() - tic

    tic = time.perf_counter()
    watermark_indices = sample_indices(clip.start_frame, clip.end_frame, config.watermark_frames)
    watermark, corner = watermark_score(
        frames,
        watermark_indices,
        box,
        config.watermark_edge,
        config.watermark_consistency,
        motion.mean,
        max_aspect=config.watermark_max_aspect,
    )
    timing["watermark"] = time.perf_counter() - tic

    tic = time.perf_counter()
    middle = frames[(clip.start_frame + clip.end_frame) // 2]
    (phash,) = perceptual_hashes([middle])
    timing["phash"] = time.perf_counter() - tic

    scale = video.height / frames.shape[1]
    x0, y0, x1, y1 = box
    source_box = (
        round(x0 * scale),
        round(y0 * scale),
        min(video.width, round(x1 * scale)),
        round(y1 * scale),
    )
    row: dict[str, Any] = {
        "clip_id": clip.clip_id,
        "width": clip.width,
        "height": clip.height,
        "fps": clip.fps,
        "duration_s": clip.duration_s,
        "motion_mean": motion.mean,
        "motion_p95": motion.p95,
        "sharpness": sharpness,
        "border_x0": source_box[0],
        "border_y0": source_box[1],
        "border_x1": source_box[2],
        "border_y1": source_box[3],
        "border_ratio": border_ratio(box, frames.shape[2], frames.shape[1]),
        "watermark": watermark,
        "watermark_corner": corner,
        "phash": phash,
        "brisque": None,
        "aesthetic": None,
        "aesthetic_model": None,
        "text_area": None,
        "embedding": None,
        "embedding_model": None,
    }
    if not cheap_only:
        fx0, fy0, fx1, fy1 = source_box
        pictures = [f[fy0:fy1, fx0:fx1] for f in _full_frames(video, clip, 1)]

        tic = time.perf_counter()
        row["brisque"] = float(np.mean([brisque(p) for p in pictures[:1]]))
        timing["brisque"] = time.perf_counter() - tic

        tic = time.perf_counter()
        scorer = load_aesthetic_scorer(config.aesthetic_model)
        row["aesthetic"] = scorer.score(
            [frames[i][y0:y1, x0:x1] for i in indices[:: max(1, len(indices) // 2)]]
        )
        row["aesthetic_model"] = scorer.name
        timing["aesthetic"] = time.perf_counter() - tic

        tic = time.perf_counter()
        # OCR on the whole frame: captions in the bars are text too; area is per full frame.
        row["text_area"] = text_area_ratio(
            _full_frames(video, clip, config.ocr_frames), config.ocr_height, config.ocr_min_confidence
        )
        timing["ocr"] = time.perf_counter() - tic

        tic = time.perf_counter()
        picks = (
            sample_indices(clip.start_frame, clip.end_frame, config.embedding_frames + 2)[1:-1] or indices[:1]
        )
        row["embedding"] = embed_frames([frames[i] for i in picks], config.embedding_weights).tolist()
        row["embedding_model"] = EMBEDDING_MODEL_NAME
        timing["embedding"] = time.perf_counter() - tic
    for name in (*CHEAP_SIGNALS, *EXPENSIVE_SIGNALS):
        row[f"timing_{name}"] = timing.get(name, 0.0)
    return row

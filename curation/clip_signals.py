"""One row of signals per clip, from one decode of its source video.

Row fields (the `CLIP_SIGNALS_SCHEMA` in `curation.schemas` fixes names and types):
motion_mean / motion_p95 (px/frame at 256p), sharpness (Laplacian variance at 256p), brisque
(0-100, lower better), aesthetic (0-10) + aesthetic_model (which scorer), text_area (0-1),
watermark (0-1) + watermark_corner, border box (x0, y0, x1, y1 in source pixels) + border_ratio,
width/height/fps/duration_s, embedding (1280 floats, L2-normalised), phash (16 hex digits), and
timing_* (seconds spent per signal group, for the speed report).

`ClipSignalStream` computes each clip's row while its video decodes, as soon as the clip's last
frame is in: it keeps full-resolution frames (for BRISQUE and OCR) only for clips not yet done,
at most `ocr_frames + 1` per clip, so a video's memory does not grow with its duration. They are
kept as the decoder's frames and converted to RGB only when a signal reads them (OCR's frames are
not read where the text gate turns the clip away).

Cheap first: a pixel-equality test decides whether optical flow is needed (frames that do not
change at all have motion 0 without it), and OCR runs only on clips where the text-line detector of
`curation.text_gate` fires on the analysis frames (else `text_area` is 0.0).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from typing import Any

import cv2
import numpy as np

from curation.config import SignalConfig
from curation.embedding import EMBEDDING_MODEL_NAME, embed_frames, perceptual_hashes
from curation.ocr import text_area_ratio
from curation.scenes import Clip
from curation.signals import (
    Motion,
    border_box,
    border_ratio,
    motion_of,
    sample_indices,
    sharpness_of,
    watermark_score,
)
from curation.text_gate import worth_ocr
from media.image_quality import brisque, load_aesthetic_scorer
from media.video import DecodedFrame

CHEAP_SIGNALS = ("motion", "sharpness", "borders", "watermark", "phash")
EXPENSIVE_SIGNALS = ("brisque", "aesthetic", "ocr", "embedding")


def _unchanged(
    frames: np.ndarray, start: int, end: int, pairs: int, box: tuple[int, int, int, int], span: int = 4
) -> bool:
    """Cheap pass before optical flow: whether the clip shows one unchanging picture.

    The grey frames `motion_of` would read (t, t+1, t+`span` at `pairs` places) and the clip's last
    frame, inside `box`, each equal to the clip's first frame, pixel for pixel: then the flow
    between them is 0 and DIS need not run. Any change (a slow pan, a low-contrast movement, sensor
    noise) gets optical flow: a tolerance of a few grey levels took slow low-contrast movement for
    a still picture.
    """
    x0, y0, x1, y1 = box
    if end - start < 2 or y1 - y0 < 2 or x1 - x0 < 2:
        return True
    span = max(1, min(span, end - start - 1))

    def grey(index: int) -> np.ndarray:
        return cv2.cvtColor(frames[index][y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)

    first = grey(start)
    later = {i for t in sample_indices(start, end - span, pairs) for i in (t, t + 1, t + span)} | {end - 1}
    return all(np.array_equal(first, grey(i)) for i in sorted(later - {start}))


def _ocr_indices(clip: Clip, config: SignalConfig) -> list[int]:
    return sample_indices(clip.start_frame, clip.end_frame, config.ocr_frames)


def _brisque_index(clip: Clip) -> int:
    return (clip.start_frame + clip.end_frame) // 2


def full_frame_indices(clip: Clip, config: SignalConfig) -> set[int]:
    """The frames of `clip` its expensive signals read at full resolution (≤ `ocr_frames` + 1)."""
    return {*_ocr_indices(clip, config), _brisque_index(clip)}


class DecodedFullFrames(Mapping[int, np.ndarray]):
    """Full-resolution frames by index, held as decoded and converted to RGB on first read."""

    def __init__(self) -> None:
        self._decoded: dict[int, DecodedFrame] = {}
        self._rgb: dict[int, np.ndarray] = {}
        self.converted = 0  # frames converted to RGB so far (for tests)

    def keep(self, index: int, frame: DecodedFrame) -> None:
        self._decoded[index] = frame

    def drop(self, index: int) -> None:
        self._decoded.pop(index, None)
        self._rgb.pop(index, None)

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self._rgb:
            self._rgb[index] = self._decoded[index].array()
            self.converted += 1
        return self._rgb[index]

    def __iter__(self) -> Iterator[int]:
        return iter(self._decoded)

    def __len__(self) -> int:
        return len(self._decoded)


class ClipSignalStream:
    """`decode_for_analysis`'s `on_frame` callback that computes the rows of `clips` while decoding.

    A clip's row is computed when frame `end_frame - 1` arrives (every frame it reads is in by then);
    its full-resolution frames are dropped right after. `cheap_only` keeps no full frame at all.
    `finish()` returns the rows in clip order and the clips whose end was never decoded.

    `first_frame`: the decode starts there (`decode_for_analysis(..., frames_range=...)`), so the
    analysis frames it hands over start there too; the clips keep the file's frame numbers and are
    read shifted by it. It must be even: `sample_indices` rounds half to even, so only an even
    shift picks the same frames as a decode from frame 0.
    """

    def __init__(
        self, clips: list[Clip], config: SignalConfig, cheap_only: bool = False, first_frame: int = 0
    ) -> None:
        if first_frame % 2:
            raise ValueError(f"first_frame {first_frame} is odd; start the decode one frame earlier")
        self.first_frame = first_frame
        self.clips, self.config, self.cheap_only = clips, config, cheap_only
        # Frame numbers into the decoded frames (ids and every reported field stay the clip's own).
        self._local = [
            dataclasses.replace(
                c, start_frame=c.start_frame - first_frame, end_frame=c.end_frame - first_frame
            )
            for c in clips
        ]
        self._wanted: dict[int, int] = {}  # full-resolution frame index → clips still needing it
        for clip in self._local if not cheap_only else []:
            for index in full_frame_indices(clip, config):
                self._wanted[index] = self._wanted.get(index, 0) + 1
        self._ending: dict[int, list[int]] = {}
        for position, clip in enumerate(self._local):
            self._ending.setdefault(clip.end_frame - 1, []).append(position)
        self._full = DecodedFullFrames()
        self._rows: dict[int, dict[str, Any]] = {}
        self.peak_full_frames = 0  # most full-resolution frames held at once (for tests/benchmarks)

    def __call__(self, frame: DecodedFrame, small: np.ndarray) -> None:
        index = frame.index - self.first_frame
        if index in self._wanted:
            self._full.keep(index, frame)
            self.peak_full_frames = max(self.peak_full_frames, len(self._full))
        for position in self._ending.pop(index, []):
            clip = self._local[position]
            full = None if self.cheap_only else self._full
            self._rows[position] = clip_signal_row(small, frame.size, clip, self.config, full)
            if not self.cheap_only:
                self._release(clip)

    @property
    def full_frames_converted(self) -> int:
        """Full-resolution frames converted to RGB so far (the ones a signal read)."""
        return self._full.converted

    def _release(self, clip: Clip) -> None:
        for index in full_frame_indices(clip, self.config):
            self._wanted[index] -= 1
            if not self._wanted[index]:
                del self._wanted[index]
                self._full.drop(index)

    def finish(self) -> tuple[list[dict[str, Any]], list[Clip]]:
        """(rows of the clips done, in clip order; clips whose last frame was never decoded)."""
        rows = [self._rows[p] for p in range(len(self.clips)) if p in self._rows]
        return rows, [c for p, c in enumerate(self.clips) if p not in self._rows]


def clip_signal_row(
    frames: np.ndarray,
    source_size: tuple[int, int],
    clip: Clip,
    config: SignalConfig,
    full: Mapping[int, np.ndarray] | None = None,
) -> dict[str, Any]:
    """All signals of one clip (see the module docstring) from the video's analysis-size `frames`
    (at least up to the clip's end) and its shown (width, height) `source_size`.

    `full` holds the full-resolution frames `full_frame_indices` names; None skips the expensive
    group (cheap signals only).
    """
    width, height = source_size
    timing: dict[str, float] = {}
    tic = time.perf_counter()
    indices = sample_indices(clip.start_frame, clip.end_frame, config.persistence_frames)
    box = border_box(
        frames, indices, config.border_max_luma, config.border_max_std, config.border_min_edge_share
    )
    timing["borders"] = time.perf_counter() - tic

    tic = time.perf_counter()
    if _unchanged(frames, clip.start_frame, clip.end_frame, config.motion_pairs, box, config.motion_span):
        motion = Motion(0.0, 0.0)
    else:
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
        motion.p95,
        max_aspect=config.watermark_max_aspect,
    )
    timing["watermark"] = time.perf_counter() - tic

    tic = time.perf_counter()
    middle = frames[(clip.start_frame + clip.end_frame) // 2]
    (phash,) = perceptual_hashes([middle])
    timing["phash"] = time.perf_counter() - tic

    scale = height / frames.shape[1]
    x0, y0, x1, y1 = box
    source_box = (
        round(x0 * scale),
        round(y0 * scale),
        min(width, round(x1 * scale)),
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
    if full is not None:
        fx0, fy0, fx1, fy1 = source_box

        tic = time.perf_counter()
        row["brisque"] = brisque(full[_brisque_index(clip)][fy0:fy1, fx0:fx1])
        timing["brisque"] = time.perf_counter() - tic

        tic = time.perf_counter()
        scorer = load_aesthetic_scorer(config.aesthetic_model)
        row["aesthetic"] = scorer.score(
            [frames[i][y0:y1, x0:x1] for i in indices[:: max(1, len(indices) // 2)]]
        )
        row["aesthetic_model"] = scorer.name
        timing["aesthetic"] = time.perf_counter() - tic

        tic = time.perf_counter()
        # OCR on the whole frame: captions in the bars are text too; area is per full frame. Only
        # where the text-line detector fires on the same frames at the analysis height.
        ocr_indices = _ocr_indices(clip, config)
        if worth_ocr([frames[i] for i in ocr_indices]):
            row["text_area"] = text_area_ratio(
                [full[i] for i in ocr_indices], config.ocr_height, config.ocr_min_confidence
            )
        else:
            row["text_area"] = 0.0
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

"""Shot detection (PySceneDetect) and clip cutting, on frames already decoded for analysis.

Clips are *referenced by frame range* into the raw file, not transcoded: a transcode would double
the disk use and lose quality for no gain, since every consumer (signals, captions, the latent
cache) decodes the raw file anyway and seeks by time. `clip_id` is the first 16 hex digits of
SHA-256(`<source sha256>:<start_frame>:<end_frame>`), so the same content cut the same way always
gets the same id, whatever its file name or folder.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

from curation.config import SceneConfig
from curation.decode import DecodedVideo


@dataclass(frozen=True)
class Clip:
    """One clip: frames `[start_frame, end_frame)` of its source video (decode order)."""

    clip_id: str
    source_path: str
    source_sha256: str
    shot_index: int
    piece_index: int
    start_frame: int
    end_frame: int
    start_time: float  # seconds
    end_time: float  # seconds (time of end_frame, or of the last frame + 1/fps)
    fps: float
    width: int
    height: int
    start_frame_sharpest: int  # absolute frame index: sharpest frame within `start_search_s`

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame

    @property
    def duration_s(self) -> float:
        return self.end_time - self.start_time


@dataclass(frozen=True)
class DroppedShot:
    """A shot that became no clip, and why (goes to the quarantine table with stage `clips`)."""

    start_frame: int
    end_frame: int
    reason: str


def clip_id_for(source_sha256: str, start_frame: int, end_frame: int) -> str:
    """The stable id of a clip: content hash of its source + its frame range."""
    return hashlib.sha256(f"{source_sha256}:{start_frame}:{end_frame}".encode()).hexdigest()[:16]


def detect_shots(video: DecodedVideo, config: SceneConfig) -> list[tuple[int, int]]:
    """Shot frame ranges `[(start, end), …]` covering the whole video, from PySceneDetect.

    The detector sees the analysis-size frames in BGR (PySceneDetect's convention); its minimum
    scene length is `min_clip_s` so it does not fire twice inside one short flash.
    """
    fps = video.info.fps
    min_len = max(2, int(round(config.min_clip_s * fps / 2)))
    if config.detector == "adaptive":
        detector: AdaptiveDetector | ContentDetector = AdaptiveDetector(
            adaptive_threshold=config.adaptive_threshold,
            min_scene_len=min_len,
            min_content_val=config.min_content_val,
        )
    else:
        detector = ContentDetector(threshold=config.content_threshold, min_scene_len=min_len)
    cuts: list[int] = []
    for index, frame in enumerate(video.small):
        found = detector.process_frame(FrameTimecode(index, fps=fps), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cuts += [int(tc.frame_num) for tc in found]
    cuts += [int(tc.frame_num) for tc in detector.post_process(FrameTimecode(video.frame_count - 1, fps=fps))]
    cuts = sorted({c for c in cuts if 0 < c < video.frame_count})
    bounds = [0, *cuts, video.frame_count]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def sharpest_frame(video: DecodedVideo, start: int, end: int, search_s: float) -> int:
    """Index of the frame with the highest variance of the Laplacian in the first `search_s`."""
    last = min(end, start + max(1, int(round(search_s * video.info.fps))))
    scores = [
        cv2.Laplacian(cv2.cvtColor(video.small[i], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
        for i in range(start, last)
    ]
    return start + int(np.argmax(scores))


def cut_clips(video: DecodedVideo, sha256: str, config: SceneConfig) -> tuple[list[Clip], list[DroppedShot]]:
    """Detect shots, drop those shorter than `min_clip_s`, split those longer than `max_clip_s`."""
    fps = video.info.fps
    clips: list[Clip] = []
    dropped: list[DroppedShot] = []
    for shot_index, (start, end) in enumerate(detect_shots(video, config)):
        duration = _time_of(video, end) - _time_of(video, start)
        if duration < config.min_clip_s:
            dropped.append(
                DroppedShot(
                    start, end, f"shot of {duration:.2f} s is shorter than min_clip_s {config.min_clip_s} s"
                )
            )
            continue
        pieces = int(np.ceil(duration / config.max_clip_s))
        edges = np.linspace(start, end, pieces + 1).round().astype(int)
        for piece_index, (piece_start, piece_end) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            clips.append(
                Clip(
                    clip_id=clip_id_for(sha256, int(piece_start), int(piece_end)),
                    source_path=video.info.path,
                    source_sha256=sha256,
                    shot_index=shot_index,
                    piece_index=piece_index,
                    start_frame=int(piece_start),
                    end_frame=int(piece_end),
                    start_time=_time_of(video, int(piece_start)),
                    end_time=_time_of(video, int(piece_end)),
                    fps=fps,
                    width=video.width,
                    height=video.height,
                    start_frame_sharpest=sharpest_frame(
                        video, int(piece_start), int(piece_end), config.start_search_s
                    ),
                )
            )
    return clips, dropped


def _time_of(video: DecodedVideo, frame: int) -> float:
    """Presentation time of `frame`; one frame period after the last frame for `frame == T`."""
    if frame < video.frame_count:
        return float(video.times[frame])
    return float(video.times[-1]) + 1.0 / video.info.fps

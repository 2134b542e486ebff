"""Cutting a clip (a frame range of a raw video) out into its own mp4, for people to watch.

Clips are referenced by frame range, not transcoded (curation/scenes.py says why); the few that people
must watch (SFT candidates in the rater app) are exported once, on demand, by this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from media.video import VideoReadError, iter_clip, write_video


class ClipExportError(ValueError):
    """The source cannot be read or holds fewer frames than the clip's range."""


def export_clip(source: Path, start_frame: int, end_frame: int, fps: float, out_path: Path) -> Path:
    """Write frames [start_frame, end_frame) of `source` to `out_path` (H.264, atomic); reuse if present.

    A trailing odd row or column is dropped: H.264 4:2:0 needs even sizes.
    """
    if out_path.exists():
        return out_path
    if end_frame <= start_frame:
        raise ClipExportError(f"clip range [{start_frame}, {end_frame}) of {source} is empty")
    frames = iter_clip(source, start_frame, end_frame)
    try:
        write_video(out_path, (f[: f.shape[0] // 2 * 2, : f.shape[1] // 2 * 2] for f in frames), fps)
    except VideoReadError as error:
        raise ClipExportError(f"cannot export [{start_frame}, {end_frame}): {error}") from error
    return out_path


@dataclass(frozen=True)
class ExportedCandidate:
    """An SFT candidate's clip as its own mp4, with its ranking score (curation.tiers.sft_candidates)."""

    clip_id: str
    video_path: Path
    score: float


def export_sft_candidates(candidates: pa.Table, clips: pa.Table, out_dir: Path) -> list[ExportedCandidate]:
    """Every row of `candidates` (SFT_CANDIDATES_SCHEMA) exported from `clips` (CLIPS_SCHEMA) to
    `out_dir/<clip_id>.mp4`, in candidate order; files already there are reused.

    Raises ClipExportError naming a candidate whose clip is not in `clips` or cannot be read.
    """
    by_id = {row["clip_id"]: row for row in clips.to_pylist()}
    exported = []
    for candidate in candidates.to_pylist():
        clip = by_id.get(candidate["clip_id"])
        if clip is None:
            raise ClipExportError(f"SFT candidate {candidate['clip_id']} is not in the clips table")
        path = export_clip(
            clip["source_path"],
            clip["start_frame"],
            clip["end_frame"],
            clip["fps"],
            out_dir / f"{clip['clip_id']}.mp4",
        )
        exported.append(ExportedCandidate(clip["clip_id"], path, float(candidate["score"])))
    return exported

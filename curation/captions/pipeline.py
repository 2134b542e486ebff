"""Captioning the clips of a table: rows → `ClipInput`s → backend → records.

Clips are frame ranges of raw videos (`curation.scenes.Clip`): the rows need `clip_id`,
`source_path` (the raw video, as the clips table names it), `start_frame` and `end_frame`. When
`CaptionConfig.corpus_ground_truth` is on and a clip's raw video lies in a demo-corpus folder (a
`labels.json` beside it), the corpus truth fills the fields it knows (backend 3) over the
configured backend, with per-field provenance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tqdm import tqdm

from curation.captions import build_backend
from curation.captions.backends.base import CaptionBackend
from curation.captions.backends.ground_truth import GroundTruthBackend
from curation.captions.config import CaptionConfig
from curation.captions.keyframes import ClipInput
from curation.captions.schema import CaptionRecord

REQUIRED_COLUMNS = ("clip_id", "source_path", "start_frame", "end_frame")


class ClipRowError(ValueError):
    """A clip row lacks a column the captioner needs."""


def clip_input(row: Mapping[str, Any]) -> ClipInput:
    """The `ClipInput` of one clip-table row (see the module docstring for the columns)."""
    missing = [name for name in REQUIRED_COLUMNS if row.get(name) is None]
    if missing:
        raise ClipRowError(f"clip row {row.get('clip_id')!r} lacks {missing}")
    video = Path(str(row["source_path"]))
    start, end = int(row["start_frame"]), int(row["end_frame"])
    return ClipInput(
        clip_id=str(row["clip_id"]),
        video=video,
        start_frame=start,
        end_frame=end,
        source_file=video.name,
        source_start_frame=start,
        source_end_frame=end,
    )


def caption_rows(
    rows: Iterable[Mapping[str, Any]], config: CaptionConfig, progress: bool = True
) -> list[CaptionRecord]:
    """Caption every clip row in order; one record per row (failures recorded, never raised)."""
    base = (
        build_backend(config)
        if config.backend != "ground_truth"
        else build_backend(config.model_copy(update={"backend": "offline"}))
    )
    by_folder: dict[Path, CaptionBackend] = {}
    records = []
    rows = list(rows)
    for row in tqdm(rows, desc="captions", unit="clip", disable=not progress):
        clip = clip_input(row)
        folder = clip.video.parent
        if folder not in by_folder:
            labels = folder / "labels.json"
            use_truth = config.backend == "ground_truth" or config.corpus_ground_truth
            by_folder[folder] = (
                GroundTruthBackend(labels, fallback=base) if use_truth and labels.is_file() else base
            )
        records.append(by_folder[folder].caption(clip))
    return records

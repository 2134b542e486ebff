"""Exporting SFT candidates' clips (frame ranges of raw videos) to their own mp4s."""

from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from curation.clip_export import ClipExportError, export_sft_candidates
from media.video import write_video


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_each_candidate_becomes_its_clip_in_candidate_order(tmp_path: Path) -> None:
    source = tmp_path / "raw.mp4"
    write_video(source, (np.full((32, 48, 3), 8 * i, np.uint8) for i in range(12)), fps=8)
    clips = pa.table(
        {
            "clip_id": ["a", "b"],
            "source_path": [str(source)] * 2,
            "start_frame": [0, 5],
            "end_frame": [4, 12],
            "fps": [8.0, 8.0],
        }
    )
    candidates = pa.table({"clip_id": ["b", "a"], "rank": [1, 2], "score": [0.9, 0.4]})
    exported = export_sft_candidates(candidates, clips, tmp_path / "sft")
    assert [(c.clip_id, c.video_path.name, c.score) for c in exported] == [
        ("b", "b.mp4", 0.9),
        ("a", "a.mp4", 0.4),
    ]
    assert [_frame_count(c.video_path) for c in exported] == [7, 4]
    again = export_sft_candidates(candidates, clips, tmp_path / "sft")  # reused, not re-encoded
    assert [c.video_path.stat().st_mtime_ns for c in again] == [
        c.video_path.stat().st_mtime_ns for c in exported
    ]

    unknown = pa.table({"clip_id": ["zz"], "rank": [1], "score": [0.1]})
    with pytest.raises(ClipExportError, match="SFT candidate zz is not in the clips table"):
        export_sft_candidates(unknown, clips, tmp_path / "sft")

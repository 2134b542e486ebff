"""Exporting clips (frame ranges of raw videos) to their own mp4s: the right frames, even sizes,
clear errors; SFT candidates in candidate order."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from curation.clip_export import ClipExportError, export_clip, export_sft_candidates
from curation.democorpus.photo_pool import real_video_paths
from media.video import read_clip, write_video


def test_export_holds_exactly_the_clip_range(tmp_path: Path) -> None:
    source = real_video_paths()["vtest"]  # 768x576, keyframes every 250 frames
    out = export_clip(source, 600, 612, 10.0, tmp_path / "clip.mp4")
    exported, original = read_clip(out), read_clip(source, 600, 612)
    assert exported.shape == original.shape == (12, 576, 768, 3)
    errors = [np.abs(exported.astype(int) - frame.astype(int)).mean() for frame in original]
    # Each exported frame is closest to its own source frame (a shifted range would not be).
    for index, frame in enumerate(exported):
        distances = [np.abs(frame.astype(int) - o.astype(int)).mean() for o in original]
        assert int(np.argmin(distances)) == index
    assert max(errors) < 10.0  # H.264 at crf 20 over noisy surveillance footage
    assert export_clip(source, 0, 5, 10.0, out) == out  # present: reused, not rewritten
    assert read_clip(out).shape[0] == 12


def test_odd_sizes_lose_a_row_and_bad_ranges_are_refused(tmp_path: Path) -> None:
    source = real_video_paths()["city"]  # 720x405: odd height
    out = export_clip(source, 100, 104, 25.0, tmp_path / "city.mp4")
    assert read_clip(out).shape == (4, 404, 720, 3)
    with pytest.raises(ClipExportError, match=r"is empty"):
        export_clip(source, 10, 10, 25.0, tmp_path / "empty.mp4")
    with pytest.raises(
        ClipExportError, match=r"cityCC0.mpg: frame range \[185, 200\) is past its 190 frames"
    ):
        export_clip(source, 185, 200, 25.0, tmp_path / "late.mp4")
    assert not (tmp_path / "late.mp4").exists()


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

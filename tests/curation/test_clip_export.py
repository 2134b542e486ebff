"""Exporting a clip's frame range to its own mp4: the right frames, even sizes, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation.clip_export import ClipExportError, export_clip
from curation.democorpus.photo_pool import real_video_paths
from media.video import read_clip


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

"""Curation inputs: every entry of a raw folder leaves one row with its real reason; memory is capped.

Runs in-process (`backend="local"`): what is tested is ingest, probe and decode, not Ray.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from curation.config import CurationConfig, ProbeConfig
from curation.decode import decode_for_analysis, probe_video
from curation.ingest import scan_batch, videos_to_curate
from curation.pipeline import make_clips
from curation.schemas import CLIPS_SCHEMA, QUARANTINE_SCHEMA
from media.tables import read_table
from media.video import write_video

LOCAL = CurationConfig.preset("tiny").replace(execution={"backend": "local"})


def _sliding(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """`n` frames of one random texture sliding 2 px/frame: one shot, visible motion."""
    texture = np.random.default_rng(seed).integers(0, 256, (height, width + 2 * n, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (5, 5), 0)
    return [np.ascontiguousarray(texture[:, 2 * i : 2 * i + width]) for i in range(n)]


def _corrupt_copy(good: Path, out: Path) -> None:
    """`good` with its second half's third quarter overwritten by noise (index and header intact)."""
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    start, end = len(data) // 2, len(data) * 3 // 4
    data[start:end] = rng.integers(0, 256, end - start, dtype=np.uint8).tobytes()
    out.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def awkward_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """raw/awkward/: one good video and one of each awkward entry."""
    batch = tmp_path_factory.mktemp("raw") / "awkward"
    batch.mkdir()
    good = batch / "good.mp4"
    write_video(good, _sliding(100, 128, 96), fps=25)
    _corrupt_copy(good, batch / "corrupt.mp4")
    (batch / "dangling.mp4").symlink_to(batch / "gone.mp4")
    (batch / "folder.mp4").mkdir()
    (batch / "folder.mp4" / "readme.txt").write_text("not a video\n")
    (batch / "notes.txt").write_text("a text file\n")
    os.mkfifo(batch / "pipe.mp4")  # opening it for reading would block forever
    cv2.imwrite(str(batch / "photo.jpg"), _sliding(1, 128, 96)[0])
    (batch / "photo.jpg").rename(batch / "photo.mp4")
    return batch


def cut_into_tables(raw: pa.Table, batch: str, out: Path) -> tuple[pa.Table, pa.Table]:
    """`make_clips` on the local backend, its two tables read back."""
    clips_path, quarantine_path = out / "clips" / f"{batch}.parquet", out / "quarantine" / f"{batch}.parquet"
    make_clips(raw, batch, LOCAL, clips_path, quarantine_path)
    return read_table(clips_path, CLIPS_SCHEMA), read_table(quarantine_path, QUARANTINE_SCHEMA)


def test_every_entry_leaves_exactly_one_row_with_its_reason(awkward_batch: Path) -> None:
    raw = scan_batch(awkward_batch.parent, awkward_batch.name, progress=False)
    entries = {
        "good.mp4",
        "corrupt.mp4",
        "dangling.mp4",
        "folder.mp4",
        "folder.mp4/readme.txt",
        "notes.txt",
        "pipe.mp4",
        "photo.mp4",
    }
    assert sorted(raw.column("relative_path").to_pylist()) == sorted(entries)
    assert videos_to_curate(raw) == 3  # good, corrupt, photo: judged by content at probe/decode

    clips, quarantine = cut_into_tables(raw, awkward_batch.name, awkward_batch.parent.parent / "out")
    clip_sources = {
        Path(p).relative_to(awkward_batch).as_posix() for p in clips.column("source_path").to_pylist()
    }
    assert clip_sources == {"good.mp4"}
    # Whole-file rows (no frame range): exactly one per entry that became no clip.
    whole_file = [r for r in quarantine.to_pylist() if r["start_frame"] is None]
    reasons = {
        Path(r["path"]).relative_to(awkward_batch).as_posix(): (r["stage"], r["reason"]) for r in whole_file
    }
    assert len(whole_file) == len(reasons) == len(entries) - 1
    assert set(reasons) | clip_sources == entries

    assert reasons["dangling.mp4"][0] == "ingest" and "dangling symlink" in reasons["dangling.mp4"][1]
    assert "folder" in reasons["folder.mp4"][1] and "not a video" in reasons["folder.mp4"][1]
    assert "not a media file" in reasons["folder.mp4/readme.txt"][1]
    assert "not a media file" in reasons["notes.txt"][1] and "'.txt'" in reasons["notes.txt"][1]
    assert reasons["pipe.mp4"] == ("ingest", "not a media file: a FIFO (named pipe)")
    assert reasons["photo.mp4"] == ("probe", "not a video: a still image (jpeg)")
    stage, reason = reasons["corrupt.mp4"]
    match = re.fullmatch(r"corrupt stream at frame (\d+) \(.+\)", reason)
    assert stage == "decode" and match, reason
    assert 0 < int(match.group(1)) < 100
    assert not any("shot" in reason for _, reason in reasons.values())


_UNREADABLE_CHILD = """
import json, os, sys
from pathlib import Path
import cv2, torch  # imported before dropping privileges: the interpreter lives under /root
from curation.config import ProbeConfig
from curation.decode import BadVideoError, probe_video
from curation.ingest import scan_batch
from tests.curation.test_curation_inputs import cut_into_tables

root, uid = Path(sys.argv[1]), int(sys.argv[2])
if uid >= 0:
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
raw = scan_batch(root, "batch", progress=False)
clips, quarantine = cut_into_tables(raw, "batch", Path(sys.argv[3]))
try:
    probe_video(root / "batch" / "secret.mp4", ProbeConfig())
    probe = None
except BadVideoError as error:
    probe = [error.stage, error.reason]
print(json.dumps({"clips": clips.column("source_path").to_pylist(), "quarantine": quarantine.to_pylist(),
                  "probe": probe}))
"""


def test_an_unreadable_file_is_a_row_not_an_aborted_batch() -> None:
    """Permission denied for real: as root, the child drops to the `nobody` user before scanning."""
    uid = 65534 if os.geteuid() == 0 else -1
    with tempfile.TemporaryDirectory() as folder:  # not pytest's tmp_path: its parents are 0700
        root = Path(folder)
        batch = root / "batch"
        batch.mkdir()
        (root / "out").mkdir()
        for path in (root, batch):
            path.chmod(0o755)
        (root / "out").chmod(0o777)  # the tables are written by the child, as nobody
        write_video(batch / "good.mp4", _sliding(50, 128, 96, seed=1), fps=25)
        write_video(batch / "secret.mp4", _sliding(50, 128, 96, seed=2), fps=25)
        (batch / "good.mp4").chmod(0o644)
        (batch / "secret.mp4").chmod(0o000 if uid < 0 else 0o600)  # owned by root, so nobody can't read
        result = subprocess.run(
            [sys.executable, "-c", _UNREADABLE_CHILD, str(root), str(uid), str(root / "out")],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [Path(p).name for p in set(report["clips"])] == ["good.mp4"]
    rows = [r for r in report["quarantine"] if Path(r["path"]).name == "secret.mp4"]
    assert [(r["stage"], r["reason"]) for r in rows] == [("ingest", "unreadable: Permission denied")]
    assert report["probe"] is not None and report["probe"][0] == "probe"
    assert "ermission denied" in report["probe"][1]


def test_decode_memory_is_capped_by_frames_at_analysis_size_not_duration(tmp_path: Path) -> None:
    """A long 64×64 video: frames are not upscaled to 256 rows nor copied, and the cap holds."""
    path = tmp_path / "long_tiny.mp4"
    frames = _sliding(16, 64, 64)
    write_video(path, (frames[i % 16] for i in range(1500)), fps=25, preset="ultrafast")
    info = probe_video(path, ProbeConfig())
    frame_bytes = 64 * 64 * 3
    for cap in (1000, 2000):  # below and above the video's 1,500 frames
        tracemalloc.start()
        video = decode_for_analysis(info, 256, max_frames=cap)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        kept = min(cap, 1500)
        assert video.small.shape == (kept, 64, 64, 3)
        assert np.abs(video.small[17].astype(int) - frames[1]).mean() < 8  # frame 17 shows texture 1
        # One array of the kept frames (sized from the packet count), plus ~1 MB of decoder state.
        assert peak < kept * frame_bytes * 1.2 + 2_000_000, (cap, peak)
    tall = decode_for_analysis(probe_video(path, ProbeConfig()), 32, max_frames=10)
    assert tall.small.shape == (10, 32, 32, 3)  # taller than the analysis height: shrunk as before

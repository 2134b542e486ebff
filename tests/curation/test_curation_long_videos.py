"""Long videos: the signals stage's memory is bounded by the frame cap, and the cap never cuts silently.

Runs the real clips and signals stages (`backend="local"`) on one 60 s video at 4 fps (few frames to
decode, so the test is fast, yet 120 half-second marks) whose frames are larger than the analysis size.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from curation.clip_signals import ClipSignalStream
from curation.config import CurationConfig
from curation.decode import decode_for_analysis, probe_video
from curation.ingest import scan_batch
from curation.pipeline import make_clips
from curation.scenes import Clip
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA, QUARANTINE_SCHEMA
from media.tables import read_table
from media.video import write_video

FRAMES, FPS, WIDTH, HEIGHT, ANALYSIS = 240, 4, 640, 360, 32
SPEED = 12  # px/frame at 360 rows: about 1 px/frame at the 32 analysis rows, clearly above sensor noise


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    """raw/long/long.mp4: 240 frames (60 s at 4 fps) of a texture sliding SPEED px/frame, 640×360."""
    raw = tmp_path_factory.mktemp("raw")
    (raw / "long").mkdir()
    rng = np.random.default_rng(0)
    # Coarse structure (about 40 px blobs) so the motion still shows at the 32 analysis rows.
    width = WIDTH + SPEED * FRAMES
    coarse = rng.integers(0, 256, (HEIGHT // 40, width // 40, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (width, HEIGHT), interpolation=cv2.INTER_CUBIC)
    frames = (np.ascontiguousarray(texture[:, SPEED * i : SPEED * i + WIDTH]) for i in range(FRAMES))
    write_video(raw / "long" / "long.mp4", frames, fps=FPS, preset="ultrafast")
    return raw, scan_batch(raw, "long", progress=False)


def _config(max_frames: int) -> CurationConfig:
    return CurationConfig.preset("tiny").replace(
        probe={"max_frames": max_frames},
        signals={"analysis_height": ANALYSIS},
        execution={"backend": "local"},
    )


def _clips(work: Path, raw: pa.Table, config: CurationConfig) -> tuple[Path, Path]:
    clips, quarantine = work / "clips" / "long.parquet", work / "quarantine" / "long.parquet"
    make_clips(raw, "long", config, clips, quarantine)
    return clips, quarantine


_CHILD = """
import json, sys
from pathlib import Path
from curation.config import CurationConfig
from curation.pipeline import compute_signals

def status(key):
    lines = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(key))

config = CurationConfig.model_validate_json(sys.argv[1])
clips, out, quarantine = (Path(a) for a in sys.argv[2:5])
Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
before = status("VmRSS:")
compute_signals(clips, config, out, quarantine, cheap_only=True)
print(json.dumps({"grew_kib": status("VmHWM:") - before}))
"""


@pytest.mark.slow  # a child process that imports the whole chain: ~15-30 s on a loaded 2-core machine
def test_signals_memory_is_bounded_by_the_frame_cap_at_analysis_size(
    tmp_path: Path, long_video: tuple[Path, pa.Table]
) -> None:
    """Before: a full-resolution frame was kept every 0.5 s (120 × 691 kB = 83 MB here) whatever the clips.

    Decoded full frames live in FFmpeg's buffers, which tracemalloc does not see, so the child's
    peak RSS (VmHWM, reset first) is measured: it may grow by the cap's analysis-size frames and decoder state only.
    """
    _, raw = long_video
    config = _config(1000)
    clips_path, quarantine = _clips(tmp_path, raw, config)
    out = tmp_path / "signals" / "long.parquet"
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, config.model_dump_json(), str(clips_path), str(out), str(quarantine)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    grew = json.loads(result.stdout.strip().splitlines()[-1])["grew_kib"] * 1024
    signals = read_table(out, CLIP_SIGNALS_SCHEMA)
    assert signals.num_rows == read_table(clips_path).num_rows
    assert all(m > 0.1 for m in signals.column("motion_mean").to_pylist())  # the texture moves
    small_frames = FRAMES * ANALYSIS * 56 * 3  # 32 rows × 56 (even width at 16:9) × RGB
    # Measured here: 27 MB now (decoder, DIS, Arrow), 108 MB before (the 0.5 s full frames).
    assert grew < small_frames * 1.2 + 50_000_000, grew


def test_full_signals_keep_only_the_full_frames_of_the_clip_being_finished(
    tmp_path: Path, long_video: tuple[Path, pa.Table]
) -> None:
    """BRISQUE and OCR read ≤ ocr_frames + 1 full frames per clip, held only until the clip ends."""
    _, raw = long_video
    config = _config(1000)
    clips_path, _ = _clips(tmp_path, raw, config)
    fields = set(Clip.__dataclass_fields__)
    clips = [Clip(**{k: v for k, v in r.items() if k in fields}) for r in read_table(clips_path).to_pylist()]
    clips.sort(key=lambda c: c.start_frame)
    stream = ClipSignalStream(clips, config.signals)
    info = probe_video(Path(clips[0].source_path), config.probe)
    video = decode_for_analysis(info, ANALYSIS, max_frames=1000, on_frame=stream)
    rows, unfinished = stream.finish()
    assert unfinished == [] and [r["clip_id"] for r in rows] == [c.clip_id for c in clips]
    assert 1 <= stream.peak_full_frames <= config.signals.ocr_frames + 1
    assert all(r["brisque"] is not None and r["text_area"] is not None for r in rows)
    assert (video.source_frames, video.truncated) == (FRAMES, False)


def test_a_video_past_the_frame_cap_is_cut_and_the_quarantine_says_so(
    tmp_path: Path, long_video: tuple[Path, pa.Table], caplog: pytest.LogCaptureFixture
) -> None:
    """The frames past `max_frames` leave a quarantine row (stage decode) with their range and a warning."""
    raw_dir, raw = long_video
    with caplog.at_level(logging.WARNING, logger="curation.decode"):
        clips_path, quarantine = _clips(tmp_path / "capped", raw, _config(150))
    clips = read_table(clips_path, CLIPS_SCHEMA)
    assert max(clips.column("end_frame").to_pylist()) == 150
    rows = read_table(quarantine, QUARANTINE_SCHEMA).to_pylist()
    assert [(r["stage"], r["start_frame"], r["end_frame"]) for r in rows] == [("decode", 150, FRAMES)]
    assert rows[0]["reason"].startswith(f"truncated: frames 150-{FRAMES} are past the max_frames cap of 150")
    assert rows[0]["path"] == str(raw_dir / "long" / "long.mp4")
    assert any(f"only the first 150 of {FRAMES} frames" in r.getMessage() for r in caplog.records)
    # Under the cap nothing is cut and nothing is reported.
    clips_path, quarantine = _clips(tmp_path / "whole", raw, _config(FRAMES))
    assert max(read_table(clips_path).column("end_frame").to_pylist()) == FRAMES
    assert not quarantine.exists() or read_table(quarantine).num_rows == 0

"""Per-video progress from the streaming stages (in-process, Ray, and `videofoundry curate`), and
what each stage decodes: once per video, and for the signals stage only its clips' span.

Decoded frames are counted by the media layer's reader (`VideoReader.decoded_frames_total`), so
these tests see what the stages really decoded.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation.config import CurationConfig
from curation.democorpus.scale_corpus import FPS, FRAMES, render_scale_corpus, scale_video_frames
from curation.execution import VideoDone
from curation.ingest import scan_batch
from curation.pipeline import compute_signals, make_clips
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA
from media.tables import read_table, write_table
from media.video import VideoReader, write_video

LOCAL = CurationConfig.preset("tiny", execution={"backend": "local"})
VIDEOS = 3


def _signals(path: Path) -> list[dict]:
    """Signal rows by clip id, without the timing columns (wall seconds differ between runs)."""
    table = read_table(path, CLIP_SIGNALS_SCHEMA).sort_by("clip_id")
    return table.select([n for n in table.column_names if not n.startswith("timing_")]).to_pylist()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("one_decode")
    render_scale_corpus(root / "raw" / "small", VIDEOS)
    return root, scan_batch(root / "raw", "small", progress=False)


def test_each_stage_decodes_and_reports_each_video_once(batch: tuple[Path, pa.Table], tmp_path: Path) -> None:
    _, raw = batch
    done: list[VideoDone] = []
    before = VideoReader.decoded_frames_total
    clips = make_clips(raw, "small", LOCAL, tmp_path / "clips.parquet", tmp_path / "q.parquet", done.append)
    assert VideoReader.decoded_frames_total - before == VIDEOS * FRAMES
    before = VideoReader.decoded_frames_total
    signals = compute_signals(
        tmp_path / "clips.parquet",
        LOCAL,
        tmp_path / "s.parquet",
        tmp_path / "q.parquet",
        progress=done.append,
    )
    assert VideoReader.decoded_frames_total - before == VIDEOS * FRAMES  # the clips span every frame
    names = [f"v{i:06d}.mp4" for i in range(VIDEOS)]
    for stage, summary, kind in (("clips", clips, "clip"), ("signals", signals, "signal")):
        records = [d for d in done if d.stage == stage]
        assert sorted(Path(d.path).name for d in records) == names
        assert sum(d.clips for d in records) == summary.rows[kind] >= VIDEOS
        assert all(d.quarantined == 0 for d in records)
    assert [d.stage for d in done] == ["clips"] * VIDEOS + ["signals"] * VIDEOS


def test_cli_curate_prints_progress_lines_per_video_and_stage(
    batch: tuple[Path, pa.Table], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from orchestration.cli import app

    root, _ = batch
    folder = tmp_path / "small"
    folder.mkdir()
    for video in sorted((root / "raw" / "small").glob("*.mp4")):
        (folder / video.name).symlink_to(video)
    (folder / "zero.mp4").write_bytes(b"")
    args = ["curate", str(folder), "--home", str(tmp_path / "home"), "--backend", "local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    clips = [line for line in result.stdout.splitlines() if line.startswith("[clips ")]
    signals = [line for line in result.stdout.splitlines() if line.startswith("[signals ")]
    assert [line.split("]")[0] for line in clips] == [
        f"[clips {i}/{VIDEOS + 1}" for i in range(1, VIDEOS + 2)
    ]
    assert [line.split("]")[0] for line in signals] == [
        f"[signals {i}/{VIDEOS}" for i in range(1, VIDEOS + 1)
    ]
    by_name = {line.split("] ")[1].split(":")[0]: line for line in clips}
    assert by_name["zero.mp4"].endswith(": 0 clips, 1 quarantined")
    assert by_name["v000001.mp4"].endswith(": 2 clips, 0 quarantined")  # odd videos have a cut
    assert by_name["v000000.mp4"].endswith(": 1 clips, 0 quarantined")
    assert any(line.endswith("v000001.mp4: 2 signal rows, 0 quarantined") for line in signals)


@pytest.mark.slow  # starts the session's Ray (~40 s on two loaded cores)
def test_progress_comes_back_from_the_ray_writers(batch: tuple[Path, pa.Table], ray_session: None) -> None:
    root, raw = batch
    done: list[VideoDone] = []
    config = CurationConfig.preset("tiny", execution={"backend": "ray", "num_cpus": 2})
    out = root / "on_ray"
    summary = make_clips(raw, "small", config, out / "clips.parquet", out / "quarantine.parquet", done.append)
    assert sorted(Path(d.path).name for d in done) == [f"v{i:06d}.mp4" for i in range(VIDEOS)]
    assert {d.stage for d in done} == {"clips"}
    assert sum(d.clips for d in done) == summary.rows["clip"]


def test_signals_stage_decodes_only_the_frames_its_clips_span(tmp_path: Path) -> None:
    # Video 1 of the scale corpus cuts at frame 15; keyframes every 5 frames let a read seek there.
    source = tmp_path / "raw" / "late"
    write_video(source / "late.mp4", scale_video_frames(1), FPS, keyframe_interval=5)
    raw = scan_batch(tmp_path / "raw", "late", progress=False)
    clips_path, quarantine = tmp_path / "clips.parquet", tmp_path / "quarantine.parquet"
    make_clips(raw, "late", LOCAL, clips_path, quarantine)
    clips = read_table(clips_path, CLIPS_SCHEMA)
    late = clips.filter(pc.greater_equal(clips.column("start_frame"), 10))
    assert late.num_rows == 1 and clips.num_rows == 2
    start = late.column("start_frame")[0].as_py()
    only_late = tmp_path / "late_clips.parquet"
    write_table(late, only_late, CLIPS_SCHEMA)

    before = VideoReader.decoded_frames_total
    summary = compute_signals(only_late, LOCAL, tmp_path / "signals.parquet", quarantine)
    decoded = VideoReader.decoded_frames_total - before
    assert summary.rows["signal"] == 1
    assert FRAMES - start <= decoded <= FRAMES - start + 6 < FRAMES  # from the keyframe before it
    # The same signals (OCR, BRISQUE, embedding included) as a decode of every clip from frame 0.
    compute_signals(clips_path, LOCAL, tmp_path / "all.parquet", quarantine)
    from_start = [r for r in _signals(tmp_path / "all.parquet") if r["clip_id"] == late["clip_id"][0].as_py()]
    assert _signals(tmp_path / "signals.parquet") == from_start

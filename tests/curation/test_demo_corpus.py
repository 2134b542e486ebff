"""The demo corpus decodes to exactly what its labels.json says."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from curation.camera_motion_classes import CAMERA_MOTIONS
from curation.democorpus.bad_inputs import BadInput
from curation.democorpus.build import VideoPlan, plan_corpus, render_video
from curation.democorpus.labels import (
    SCHEMA_VERSION,
    TEXT_HEAVY_RATIO,
    CorpusLabels,
    LabelsVersionError,
    load_labels,
)
from media.video import iter_clip, read_clip


@dataclass
class Decoded:
    """One decode pass over a corpus video: what the tests below look at."""

    frame_count: int
    gray_256p: np.ndarray  # (T, 256, W256) uint8
    middles: dict[str, np.ndarray]  # shot_id → full-resolution RGB middle frame (H, W, 3)


@pytest.fixture(scope="module")
def decoded(demo_corpus_dir: Path, demo_labels: CorpusLabels) -> dict[str, Decoded]:
    """Every corpus video decoded once (decoding is the expensive part of these tests)."""
    result = {}
    for video in demo_labels.videos:
        middle_of = {(s.start_frame + s.end_frame) // 2: s.shot_id for s in video.shots}
        scale = 256 / video.height
        grays, middles = [], {}
        for index, frame in enumerate(iter_clip(demo_corpus_dir / video.file)):
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            grays.append(cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
            if index in middle_of:
                middles[middle_of[index]] = frame
        result[video.video_id] = Decoded(len(grays), np.stack(grays), middles)
    return result


def test_corpus_is_small_and_has_every_kind(demo_corpus_dir: Path, demo_labels: CorpusLabels) -> None:
    assert demo_labels.schema_version == SCHEMA_VERSION
    kinds = [v.kind for v in demo_labels.videos]
    assert 20 <= len(kinds) <= 40
    assert {"single", "long", "real", "duplicate"} <= set(kinds)
    assert {v.duplicate_kind for v in demo_labels.videos if v.kind == "duplicate"} == {
        "exact",
        "reencoded",
        "resized",
        "trimmed",
    }
    size_mb = sum(f.stat().st_size for f in demo_corpus_dir.glob("*.mp4")) / 1e6
    assert size_mb < 100
    shots = [s for _, s in demo_labels.shots() if s.camera_motion is not None]
    assert {s.camera_motion for s in shots} == set(CAMERA_MOTIONS)
    assert sum(bool(s.text_heavy) for s in shots) >= 3
    assert sum(bool(s.watermark) for s in shots) >= 3
    assert {s.border for s in shots} == {"none", "letterbox", "pillarbox"}
    assert any(s.slow_motion for s in shots) and any(s.static for s in shots)
    # Every synthetic shot is over its own photo (duplicates excepted), so no accidental duplicates.
    originals = [s.source_image for s in shots if s.duplicate_of is None]
    assert len(originals) == len(set(originals))


def test_frame_counts_sizes_and_fps_match(
    demo_corpus_dir: Path, demo_labels: CorpusLabels, decoded: dict[str, Decoded]
) -> None:
    for video in demo_labels.videos:
        with av.open(str(demo_corpus_dir / video.file)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (video.width, video.height)
            assert stream.codec_context.name == "h264"
            assert float(stream.average_rate) == pytest.approx(video.fps, rel=1e-3)
        assert decoded[video.video_id].frame_count == video.frame_count, video.video_id
        assert next(iter(decoded[video.video_id].middles.values())).shape == (video.height, video.width, 3)
        assert video.shots[0].start_frame == 0 and video.shots[-1].end_frame == video.frame_count
        for before, after in zip(video.shots[:-1], video.shots[1:], strict=True):
            assert before.end_frame == after.start_frame
        assert video.cuts == [s.start_frame for s in video.shots[1:]]


def test_cuts_are_frame_difference_spikes(demo_labels: CorpusLabels, decoded: dict[str, Decoded]) -> None:
    checked = 0
    for video in demo_labels.videos:
        if not video.cuts_known:
            continue
        # At 32 px high, texture sliding under a fast pan averages out; a change of scene does not.
        frames = np.stack(
            [cv2.resize(f, (56, 32), interpolation=cv2.INTER_AREA) for f in decoded[video.video_id].gray_256p]
        ).astype(np.float32)
        diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))  # diffs[i]: frame i → i + 1
        for cut in video.cuts:
            spike = diffs[cut - 1]
            neighbours = np.concatenate([diffs[max(0, cut - 6) : cut - 1], diffs[cut : cut + 5]])
            assert spike > 3 * neighbours.max(), (video.video_id, cut, spike, neighbours.max())
            checked += 1
        cut_set = {c - 1 for c in video.cuts}
        inside = [d for i, d in enumerate(diffs) if i not in cut_set]
        if video.cuts:
            assert min(diffs[c - 1] for c in video.cuts) > max(inside)
    assert checked >= 10


def test_static_slow_and_moving_shots_have_the_labelled_flow(
    demo_labels: CorpusLabels, decoded: dict[str, Decoded]
) -> None:
    """Farneback flow at 256p: static ≈ 0, slow ≤ 0.15, moving shots clearly above both."""
    for video in demo_labels.videos:
        if video.kind in ("real", "duplicate"):
            continue
        scale = 256 / video.height
        frames = decoded[video.video_id].gray_256p
        for shot in video.shots:
            x0, y0, x1, y1 = (int(c * scale) for c in shot.content_box)
            speeds = []
            step = (shot.end_frame - shot.start_frame) // 4
            for i in range(shot.start_frame + 1, shot.end_frame - 1, step):
                flow = cv2.calcOpticalFlowFarneback(frames[i], frames[i + 1], None, 0.5, 3, 15, 3, 5, 1.2, 0)
                speeds.append(np.linalg.norm(flow[y0:y1, x0:x1], axis=2).mean())
            speed = float(np.mean(speeds))
            if shot.static:
                assert speed < 0.02, (shot.shot_id, speed)
            elif shot.slow_motion:
                assert speed < 0.15, (shot.shot_id, speed)
            else:
                assert speed > 0.2, (shot.shot_id, speed)


def test_bars_overlays_and_text_are_where_labels_say(
    demo_labels: CorpusLabels, decoded: dict[str, Decoded]
) -> None:
    for video in demo_labels.videos:
        if video.kind == "real":
            continue
        for shot in video.shots:
            middle = decoded[video.video_id].middles[shot.shot_id].astype(np.float32)
            x0, y0, x1, y1 = shot.content_box
            bar_mask = np.ones(middle.shape[:2], dtype=bool)
            bar_mask[y0:y1, x0:x1] = False
            assert (shot.border == "none") == (not bar_mask.any())
            assert shot.border_ratio == pytest.approx(bar_mask.mean(), abs=0.01)
            if bar_mask.any():
                assert middle[bar_mask].mean() < 8.0
                assert middle[~bar_mask].mean() > 20.0
            expected = sum((b[2] - b[0]) * (b[3] - b[1]) for b in shot.text_boxes) / (
                video.width * video.height
            )
            assert shot.text_area_ratio == pytest.approx(expected, abs=0.002)
            assert shot.text_heavy == (shot.text_area_ratio >= TEXT_HEAVY_RATIO)
            for bx0, by0, bx1, by1 in shot.text_boxes:
                patch = middle[by0:by1, bx0:bx1]
                assert (patch > 230).mean() > 0.05  # white glyph strokes
                assert (patch < 40).mean() > 0.05  # black outlines
            if shot.watermark:
                wx0, wy0, wx1, wy1 = shot.watermark_box
                assert (middle[wy0:wy1, wx0:wx1].max(axis=2) > 150).mean() > 0.1


def test_duplicates_match_their_sources(demo_corpus_dir: Path, demo_labels: CorpusLabels) -> None:
    for video in demo_labels.videos:
        if video.kind != "duplicate":
            continue
        source = demo_labels.video(video.duplicate_of)
        if video.duplicate_kind == "exact":
            assert (demo_corpus_dir / video.file).read_bytes() == (demo_corpus_dir / source.file).read_bytes()
            continue
        copy, original = read_clip(demo_corpus_dir / video.file), read_clip(demo_corpus_dir / source.file)
        if video.duplicate_kind == "trimmed":
            original = original[6:-6]
        if video.duplicate_kind == "resized":
            original = np.stack(
                [cv2.resize(f, (video.width, video.height), interpolation=cv2.INTER_AREA) for f in original]
            )
        assert copy.shape == original.shape
        mse = np.mean((copy.astype(np.float32) - original.astype(np.float32)) ** 2)
        assert 10 * np.log10(255.0**2 / mse) > 28.0
        assert [s.duplicate_of for s in video.shots] == [s.shot_id for s in source.shots]


def test_plan_is_deterministic_and_seed_dependent() -> None:
    assert plan_corpus(0) == plan_corpus(0)
    assert plan_corpus(0) != plan_corpus(1)


def test_rendering_is_byte_deterministic(tmp_path: Path) -> None:
    """Rendered three times in one process: the same labels and the same bytes (x264's mbtree off)."""
    video = plan_corpus(3).videos[-1]
    short = VideoPlan(**{**video.__dict__, "shots": video.shots[:1], "width": 320, "height": 180})
    labels = [render_video(short, tmp_path / name) for name in "abc"]
    assert labels[0] == labels[1] == labels[2]
    contents = {(tmp_path / name / labels[0].file).read_bytes() for name in "abc"}
    assert len(contents) == 1


def test_old_schema_is_refused(tmp_path: Path, demo_corpus_dir: Path) -> None:
    raw = json.loads((demo_corpus_dir / "labels.json").read_text())
    raw["schema_version"] = 0
    (tmp_path / "labels.json").write_text(json.dumps(raw))
    with pytest.raises(LabelsVersionError, match="schema_version 0"):
        load_labels(tmp_path / "labels.json")


def test_bad_inputs_are_what_they_claim(bad_inputs_dir: tuple[Path, dict[str, BadInput]]) -> None:
    folder, manifest = bad_inputs_dir
    assert json.loads((folder / "bad_inputs.json").read_text(encoding="utf-8")).keys() == manifest.keys()
    assert (folder / "zero_byte.mp4").stat().st_size == 0
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(folder / "not_a_video.mp4"))
    with av.open(str(folder / "audio_only.mp4")) as container:
        assert not container.streams.video and container.streams.audio
    assert len(read_clip(folder / "one_frame.mp4")) == 1
    assert read_clip(folder / "tiny_16x16.mp4").shape[1:3] == (16, 16)
    with av.open(str(folder / "variable_frame_rate.mp4")) as container:
        pts = [f.pts for f in container.decode(video=0)]
    assert len(set(np.diff(pts).tolist())) == 2
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "csv=p=0",
            str(folder / "rotated_90.mp4"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "90" in probe.stdout
    unicode_name = next(name for name in manifest if "ü" in name)
    assert (folder / unicode_name).read_bytes() == (folder / "same_file_twice.mp4").read_bytes()
    assert {name for name, item in manifest.items() if item.expect == "accept"} >= {
        unicode_name,
        "rotated_90.mp4",
    }


def test_cli_refuses_an_unknown_profile(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "videofoundry"),
            "demo-corpus",
            str(tmp_path),
            "--profile",
            "huge",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "unknown corpus profile 'huge'" in result.stderr

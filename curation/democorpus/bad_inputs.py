"""Deliberately awkward input files for curation tests: every one must be handled, none may crash.

`build_bad_inputs(out_dir)` writes the files and returns a manifest: file name → `BadInput` with
what a correct pipeline does with it (`quarantine` at ingest, or `accept` and process normally).
The manifest is also written as `bad_inputs.json` next to the files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from media.video import write_video


@dataclass(frozen=True)
class BadInput:
    """What a correct pipeline does with one file, and why the file is awkward."""

    expect: Literal["quarantine", "accept"]
    why: str


def _moving_frames(n: int, width: int, height: int, seed: int, block: int = 8) -> list[np.ndarray]:
    """`n` frames of a blocky pattern sliding by 3 px/frame (visible, non-static motion)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(
        0, 256, size=(height // block + 2, width // block + 64 // block, 3), dtype=np.uint8
    )
    texture = np.kron(texture, np.ones((block, block, 1), dtype=np.uint8))
    return [np.ascontiguousarray(texture[:height, 3 * i % 48 : 3 * i % 48 + width]) for i in range(n)]


def _audio_only(path: Path) -> None:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
        for start in range(0, 16000, 1024):
            chunk = samples[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = 16000
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def build_bad_inputs(out_dir: Path) -> dict[str, BadInput]:
    """Write the awkward files into `out_dir`; return and save the manifest (`bad_inputs.json`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, BadInput] = {}

    good = out_dir / "good_reference.mp4"
    write_video(good, _moving_frames(75, 320, 256, seed=1), fps=25)
    manifest[good.name] = BadInput("accept", "a plain valid 3 s video, the control")

    (out_dir / "zero_byte.mp4").write_bytes(b"")
    manifest["zero_byte.mp4"] = BadInput("quarantine", "empty file")

    truncated = good.read_bytes()
    (out_dir / "truncated.mp4").write_bytes(truncated[: len(truncated) // 3])
    manifest["truncated.mp4"] = BadInput("quarantine", "first third of an mp4: no index (moov) atom")

    (out_dir / "not_a_video.mp4").write_text("this is a text file, not a video\n" * 20, encoding="utf-8")
    manifest["not_a_video.mp4"] = BadInput("quarantine", "text file with a video extension")

    _audio_only(out_dir / "audio_only.mp4")
    manifest["audio_only.mp4"] = BadInput("quarantine", "AAC audio, no video stream")

    write_video(out_dir / "one_frame.mp4", _moving_frames(1, 320, 256, seed=2), fps=25)
    manifest["one_frame.mp4"] = BadInput("quarantine", "a single frame: no clip can be cut from it")

    write_video(out_dir / "tiny_16x16.mp4", _moving_frames(75, 16, 16, seed=3), fps=25)
    manifest["tiny_16x16.mp4"] = BadInput("quarantine", "16x16 pixels: below any usable resolution")

    write_video(
        out_dir / "huge_5120x2880.mp4",
        _moving_frames(4, 5120, 2880, seed=4, block=64),
        fps=25,
        preset="ultrafast",
    )
    manifest["huge_5120x2880.mp4"] = BadInput("quarantine", "14.7 Mpx frames: above the frame-size cap")

    # Variable frame rate: frame durations alternate 1/50 s and 1/25 s (timestamps in 1/1000 s).
    durations = [20 if i % 2 else 40 for i in range(90)]
    pts = list(np.cumsum([0, *durations[:-1]]).astype(int))
    write_video(
        out_dir / "variable_frame_rate.mp4",
        _moving_frames(90, 320, 256, seed=5),
        fps=25,
        pts=pts,
        time_base=Fraction(1, 1000),
    )
    manifest["variable_frame_rate.mp4"] = BadInput("accept", "variable frame rate (20/40 ms frames)")

    rotated = out_dir / "rotated_90.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(good),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )
    manifest[rotated.name] = BadInput("accept", "rotation metadata (display matrix 90°)")

    unicode_name = "clip with spaces – ünïcödé 视频.mp4"
    write_video(out_dir / unicode_name, _moving_frames(75, 320, 256, seed=6), fps=25)
    manifest[unicode_name] = BadInput("accept", "spaces and non-ASCII characters in the name")

    shutil.copyfile(out_dir / unicode_name, out_dir / "same_file_twice.mp4")
    manifest["same_file_twice.mp4"] = BadInput("quarantine", f"byte-identical to {unicode_name!r}")

    (out_dir / "bad_inputs.json").write_text(
        json.dumps({name: asdict(item) for name, item in manifest.items()}, indent=1, ensure_ascii=False),
        encoding="utf-8",
    )
    return manifest

"""Curation speed: the CPU signal pass against a decode-only pass over the same files, in one run.

Usage::

    .venv/bin/python benchmarks/curation_speed.py [CORPUS_DIR] [--repeat 1]

Passes (one process, one thread each, same files, same order):
1. decode-only: decode every frame and scale it to the analysis size (256 rows, RGB): the least
   any signal pass must do. Also reported: decode to full-resolution RGB arrays.
2. cheap signals: the same decode + motion (DIS flow), sharpness, borders, watermark, pHash for
   every clip (clips come from the clips stage, run first and not timed).
3. all signals: 2 + full-resolution frames kept every 0.5 s + BRISQUE, aesthetic stand-in, OCR,
   embedding.
Prints clips/s for each, the cheap/decode ratio (target ≥ 0.5) and where the time goes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import torch  # noqa: E402

from curation.clip_signals import CHEAP_SIGNALS, EXPENSIVE_SIGNALS, ClipSignalStream  # noqa: E402
from curation.config import CurationConfig  # noqa: E402
from curation.decode import decode_for_analysis, probe_video  # noqa: E402
from curation.democorpus.build import build_demo_corpus  # noqa: E402
from curation.ingest import scan_batch  # noqa: E402
from curation.pipeline import make_clips  # noqa: E402
from curation.scenes import Clip  # noqa: E402
from media.tables import read_table  # noqa: E402
from media.video import VideoReader  # noqa: E402


def _decode_native(path: str) -> int:
    """Full-resolution RGB decode of every frame: the floor any analysis decode pays."""
    with VideoReader(path) as reader:
        return sum(1 for frame in reader.frames() if frame.array() is not None)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "corpus", nargs="?", type=Path, default=Path(tempfile.gettempdir()) / "vf_demo_corpus"
    )
    parser.add_argument("--repeat", type=int, default=1, help="repeat each pass and keep the fastest")
    args = parser.parse_args()
    if not (args.corpus / "labels.json").is_file():
        build_demo_corpus(args.corpus, seed=0)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    config = CurationConfig.preset("tiny", execution={"backend": "local"})
    corpus = args.corpus.resolve()
    raw = scan_batch(corpus.parent, corpus.name, progress=False)
    work = Path(tempfile.mkdtemp(prefix="vf_speed_"))
    clips_path = work / "clips" / f"{corpus.name}.parquet"
    make_clips(raw, corpus.name, config, clips_path, work / "quarantine" / f"{corpus.name}.parquet")
    clips_table = read_table(clips_path).sort_by([("source_path", "ascending"), ("start_frame", "ascending")])
    by_video: dict[str, list[Clip]] = {}
    fields = set(Clip.__dataclass_fields__)
    for row in clips_table.to_pylist():
        by_video.setdefault(row["source_path"], []).append(
            Clip(**{k: v for k, v in row.items() if k in fields})
        )
    n_clips = clips_table.num_rows
    infos = {path: probe_video(Path(path), config.probe) for path in sorted(by_video)}
    signals = config.signals

    def decode_only() -> None:
        for info in infos.values():
            decode_for_analysis(info, signals.analysis_height, max_frames=config.probe.max_frames)

    def native_only() -> None:
        for path in infos:
            _decode_native(path)

    totals: dict[str, float] = {}

    def signal_pass(cheap: bool) -> None:
        totals.clear()
        for path, info in infos.items():
            tic = time.perf_counter()
            stream = ClipSignalStream(by_video[path], signals, cheap_only=cheap)
            decode_for_analysis(
                info, signals.analysis_height, max_frames=config.probe.max_frames, on_frame=stream
            )
            elapsed = time.perf_counter() - tic
            rows, _ = stream.finish()
            for row in rows:  # signals run inside the decode loop: decode time is the rest
                for name in (*CHEAP_SIGNALS, *EXPENSIVE_SIGNALS):
                    totals[name] = totals.get(name, 0.0) + row[f"timing_{name}"]
                    elapsed -= row[f"timing_{name}"]
            totals["decode"] = totals.get("decode", 0.0) + elapsed

    def timed(run) -> float:  # type: ignore[no-untyped-def]
        best = float("inf")
        for _ in range(args.repeat):
            tic = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - tic)
        return best

    signal_pass(True)  # warm-up: imports, DIS and BRISQUE set-up, page cache
    t_decode = timed(decode_only)
    t_native = timed(native_only)
    t_cheap = timed(lambda: signal_pass(True))
    cheap_breakdown = dict(totals)
    t_all = timed(lambda: signal_pass(False))
    all_breakdown = dict(totals)
    frames = sum(int(c.end_frame) for clips in by_video.values() for c in clips[-1:])
    print(f"{len(infos)} videos, {n_clips} clips, ~{frames} frames; one thread per pass")
    print(f"{'pass':<40} {'seconds':>8} {'clips/s':>8}")
    for name, seconds in (
        ("decode-only (scaled to 256 rows)", t_decode),
        ("decode-only (full-res RGB arrays)", t_native),
        ("cheap signals (incl. decode)", t_cheap),
        ("all signals (incl. decode, OCR, CNN)", t_all),
    ):
        print(f"{name:<40} {seconds:>8.2f} {n_clips / seconds:>8.2f}")
    print(f"cheap / decode-only throughput ratio: {t_decode / t_cheap:.2f} (target >= 0.5)")
    print(f"cheap / full-res RGB decode ratio:    {t_native / t_cheap:.2f}")
    print(f"all / decode-only throughput ratio:   {t_decode / t_all:.2f}")
    for label, breakdown, total in (("cheap", cheap_breakdown, t_cheap), ("all", all_breakdown, t_all)):
        parts = sorted(breakdown.items(), key=lambda item: -item[1])
        print(
            f"where the time goes ({label}): "
            + ", ".join(f"{k} {v:.2f}s ({100 * v / total:.0f}%)" for k, v in parts if v > 0)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

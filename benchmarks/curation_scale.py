"""Curation at scale: sections that each print JSON rows (one per size) on stdout.

Usage::

    .venv/bin/python benchmarks/curation_scale.py --only dedup [--rows 300000 1000000] [--dim 256]
    .venv/bin/python benchmarks/curation_scale.py --only driver_rss [--videos 400 1600] [--signals cheap]
    .venv/bin/python benchmarks/curation_scale.py --only throughput [--corpus DIR]
    .venv/bin/python benchmarks/curation_scale.py --only dedup,driver_rss,throughput

Sections (`--only` picks some, comma- or space-separated; default dedup):

- `dedup`: `curation.dedup.duplicate_groups` on synthetic embeddings with planted near-duplicate
  groups. Background rows come from concept clusters (same-cluster cosine distance ~0.4, so the
  index sees structure like real embeddings); 10 % of the rows are planted copies of a background
  row at cosine distance ≤ `--max-copy-distance` (0.06) from it (copies of one original then lie
  ≤ 0.1 apart; 0.09 plants copies near the 0.1 threshold). Reported: recall
  (planted copies grouped with their original), wrongly merged rows (rows whose group holds a row
  of another planted group), wall time, and the peak RSS of a child process running the section
  alone (so sizes do not share a high-water mark). Targets (issue 16): 300,000 × 256 recall ≥ 99 %,
  < 0.1 % wrongly merged, ≤ 240 s, ≤ 4 GiB; 1,000,000 × 256 ≤ 900 s.
- `driver_rss`: driver peak RSS of the streaming stages against corpus size (target: 4× the videos
  ≤ 1.1× the RSS). Per size, a corpus of short distinct videos (`curation.democorpus.scale_corpus`:
  128×96, 30 frames at 12 fps, 1.5 clips per video) is rendered under `--root`; a fresh child
  process (the driver) starts a local Ray with `--cpus` CPUs and runs `make_clips` then
  `compute_signals` (actor pools, parts written by the workers). Rows: videos, clips, quarantine
  rows, wall seconds, the driver's peak RSS (`ru_maxrss`, imports included) and its RSS once Ray
  was up; the last row gives the ratio. Dedup and tiers are not part of this measure.
- `throughput`: signal throughput per CPU core against decode-only (target: all signals ≥ 0.5×).
  One child process, one compute thread, the demo corpus (`--corpus`, built when missing). The
  clips stage runs first (not measured); then, per pass, the CPU seconds (the process's own,
  decoder threads included, plus its children's: tesseract) over every video: decode-only
  (every frame to the analysis height), cheap signals (decode + motion, sharpness, borders,
  watermark, pHash, each clip's row computed while the video decodes) and all signals (the same,
  keeping the few full-resolution frames the unfinished clips need + BRISQUE, aesthetic, OCR,
  embedding). Rows: clips per CPU-second per pass, the ratios, and the wall seconds per signal
  (the rows' timing columns). Then the whole per-video stages in-process (probe, decode, shot
  detection, all signals, Parquet): clips then signals. CPU time, not wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

MAX_DISTANCE = 0.1
SECTIONS = ("dedup", "driver_rss", "throughput")


def planted_embeddings(
    n: int, dim: int, max_copy_distance: float = 0.06, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) float32 embeddings and (n,) int64 planted group (the row index of each row's original).

    90 % originals drawn around 1,000 concept centres; 10 % copies of random originals, each at a
    cosine distance up to ~`max_copy_distance` from its original.
    """
    rng = np.random.default_rng(seed)
    n_copies = n // 10
    n_originals = n - n_copies
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = np.empty((n, dim), np.float32)
    truth = np.arange(n, dtype=np.int64)
    step = 100_000
    for start in range(0, n_originals, step):
        stop = min(n_originals, start + step)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * np.float32(0.8 / np.sqrt(dim))
        vectors[start:stop] = centres[rng.integers(0, len(centres), stop - start)] + noise
    vectors[:n_originals] /= np.linalg.norm(vectors[:n_originals], axis=1, keepdims=True)
    # Copies: original + noise of norm τ (≈ orthogonal to it) → cosine distance 1 − 1/√(1 + τ²).
    tau_max = np.sqrt(1.0 / (1.0 - max_copy_distance) ** 2 - 1.0)
    sources = rng.integers(0, n_originals, n_copies)
    for start in range(0, n_copies, step):
        stop = min(n_copies, start + step)
        tau = rng.uniform(0.1, tau_max, (stop - start, 1)).astype(np.float32)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32)
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        rows = slice(n_originals + start, n_originals + stop)
        vectors[rows] = vectors[sources[start:stop]] + tau * noise
        vectors[rows] /= np.linalg.norm(vectors[rows], axis=1, keepdims=True)
    truth[n_originals:] = sources
    order = rng.permutation(n)
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    return vectors[order], inverse[truth[order]]


def score_groups(found: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Recall: rows of planted groups of ≥ 2 whose found group is their original's. Wrongly merged:
    rows whose found group also holds a row of another planted group."""
    sizes = np.bincount(truth, minlength=len(truth))
    planted = sizes[truth] >= 2
    recall = float(np.mean(found[planted] == found[truth[planted]])) if planted.any() else 1.0
    # A found group is pure when every row in it has the same planted group.
    order = np.argsort(found, kind="stable")
    f, t = found[order], truth[order]
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    t_min = np.minimum.reduceat(t, starts)
    t_max = np.maximum.reduceat(t, starts)
    impure_group = np.zeros(int(found.max()) + 1, bool)
    impure_group[f[starts]] = t_min != t_max
    return {
        "recall": recall,
        "planted_rows": int(planted.sum()),
        "wrongly_merged_rate": float(np.mean(impure_group[found])),
    }


def dedup_row(n: int, dim: int, max_copy_distance: float) -> dict[str, Any]:
    from curation.dedup import duplicate_groups

    tic = time.perf_counter()
    vectors, truth = planted_embeddings(n, dim, max_copy_distance)
    generate_s = time.perf_counter() - tic
    tic = time.perf_counter()
    found = duplicate_groups(vectors, MAX_DISTANCE)
    wall_s = time.perf_counter() - tic
    return {
        "section": "dedup",
        "rows": n,
        "dim": dim,
        "max_distance": MAX_DISTANCE,
        "max_copy_distance": max_copy_distance,
        "wall_s": round(wall_s, 1),
        "generate_s": round(generate_s, 1),
        **score_groups(found, truth),
        "groups": int(found.max()) + 1,
    }


def _child(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], queue: Any) -> None:
    row = fn(*args)
    row["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    queue.put(row)


def in_child(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`fn(*args)` in a fresh process, with that process's peak RSS (GiB) added to its row."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn, args, queue))
    process.start()
    row: dict[str, Any] = queue.get()
    process.join()
    return row


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def driver_row(corpus: Path, out: Path, signals: str, cpus: int) -> dict[str, Any]:
    """Run the streaming stages over `corpus` (this process is the driver); return the JSON row."""
    from curation.config import CurationConfig
    from curation.ingest import scan_batch
    from curation.pipeline import compute_signals, make_clips
    from media.ray_cluster import ensure_ray, shutdown_ray
    from media.tables import table_path

    ensure_ray(None, cpus)
    rss_ray_up = _rss_mib()
    config = CurationConfig.preset("tiny", execution={"num_cpus": cpus})
    tic = time.perf_counter()
    raw = scan_batch(corpus.parent, corpus.name, progress=False)
    clips_path = table_path(out / "tables", "clips", corpus.name)
    signals_path = table_path(out / "tables", "clip_signals", corpus.name)
    quarantine = out / "quarantine" / f"{corpus.name}.parquet"
    clips = make_clips(raw, corpus.name, config, clips_path, quarantine)
    t_clips = time.perf_counter() - tic
    signal = compute_signals(clips_path, config, signals_path, quarantine, cheap_only=signals == "cheap")
    wall = time.perf_counter() - tic
    shutdown_ray()
    return {
        "section": "driver_rss",
        "videos": raw.num_rows,
        "clips": clips.rows["clip"],
        "signal_rows": signal.rows["signal"],
        "quarantine_rows": clips.rows["quarantine"] + signal.rows["quarantine"],
        "signals": signals,
        "ray_cpus": cpus,
        "wall_s": round(wall, 1),
        "clips_stage_s": round(t_clips, 1),
        "cpu_s_per_clip": round(wall * cpus / max(1, signal.rows["signal"]), 3),
        "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "driver_rss_after_ray_start_mib": round(rss_ray_up, 1),
    }


def driver_rss_rows(videos: list[int], root: Path, signals: str, cpus: int) -> list[dict[str, Any]]:
    """One row per corpus size, each from a fresh driver process; a last row gives the ratio."""
    from curation.democorpus.scale_corpus import render_scale_corpus

    rows = []
    for count in videos:
        corpus = root / f"raw_{count}" / f"synthetic{count}"
        render_scale_corpus(corpus, count)
        row = in_child(driver_row, corpus, root / f"out_{count}", signals, cpus)
        row.pop("peak_rss_gib")  # the driver's own figure is in the row already
        rows.append(row)
        print(json.dumps(row), flush=True)
    if len(rows) >= 2:
        ratio = rows[-1]["driver_peak_rss_mib"] / rows[0]["driver_peak_rss_mib"]
        summary = {
            "section": "driver_rss",
            "videos_ratio": rows[-1]["videos"] / rows[0]["videos"],
            "peak_rss_ratio": round(ratio, 3),
            "target": "<= 1.1",
        }
        rows.append(summary)
        print(json.dumps(summary), flush=True)
    return rows


def _cpu_s() -> float:
    """CPU seconds of this process (all its threads) and of its waited-for children (tesseract)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def throughput_row(corpus: Path, repeat: int, stages: bool) -> dict[str, Any]:
    """Clips per CPU-second of decode-only, cheap-signal and all-signal passes over `corpus`; with
    `stages`, also the CPU seconds of the whole per-video stages (clips, then signals)."""
    import tempfile

    import cv2
    import torch

    from curation.clip_signals import CHEAP_SIGNALS, EXPENSIVE_SIGNALS, ClipSignalStream
    from curation.config import CurationConfig
    from curation.decode import decode_for_analysis, probe_video
    from curation.democorpus.build import build_demo_corpus
    from curation.ingest import scan_batch
    from curation.pipeline import compute_signals, make_clips
    from curation.scenes import Clip
    from media.tables import read_table

    if not (corpus / "labels.json").is_file():
        build_demo_corpus(corpus, seed=0)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    config = CurationConfig.preset("tiny", execution={"backend": "local"})
    signals = config.signals
    corpus = corpus.resolve()
    raw = scan_batch(corpus.parent, corpus.name, progress=False)
    work = Path(tempfile.mkdtemp(prefix="vf_throughput_"))
    clips_path = work / "clips.parquet"
    make_clips(raw, corpus.name, config, clips_path, work / "quarantine.parquet")
    fields = set(Clip.__dataclass_fields__)
    by_video: dict[str, list[Clip]] = {}
    for row in (
        read_table(clips_path)
        .sort_by([("source_path", "ascending"), ("start_frame", "ascending")])
        .to_pylist()
    ):
        by_video.setdefault(row["source_path"], []).append(
            Clip(**{k: v for k, v in row.items() if k in fields})
        )
    infos = [probe_video(Path(path), config.probe) for path in sorted(by_video)]
    clips = sum(len(c) for c in by_video.values())
    wall: dict[str, float] = {}  # wall seconds per signal (the rows' timing_* columns)

    def decode_only() -> None:
        for info in infos:
            decode_for_analysis(info, signals.analysis_height, max_frames=config.probe.max_frames)

    def signal_pass(cheap: bool) -> None:
        wall.clear()
        for info in infos:
            stream = ClipSignalStream(by_video[info.path], signals, cheap_only=cheap)
            decode_for_analysis(
                info, signals.analysis_height, max_frames=config.probe.max_frames, on_frame=stream
            )
            for row in stream.finish()[0]:
                for name in (*CHEAP_SIGNALS, *EXPENSIVE_SIGNALS):
                    wall[name] = wall.get(name, 0.0) + row[f"timing_{name}"]

    def cpu_seconds(run: Callable[[], None]) -> float:
        best = float("inf")
        for _ in range(repeat):
            tic = _cpu_s()
            run()
            best = min(best, _cpu_s() - tic)
        return best

    signal_pass(False)  # warm-up: imports, model loads, page cache
    t_decode = cpu_seconds(decode_only)
    t_cheap = cpu_seconds(lambda: signal_pass(True))
    t_all = cpu_seconds(lambda: signal_pass(False))

    def two_stages() -> None:  # the clips stage, then the signals stage decoding every video again
        make_clips(raw, corpus.name, config, work / "c2.parquet", work / "q2.parquet")
        compute_signals(work / "c2.parquet", config, work / "s2.parquet", work / "q2.parquet")

    t_two = cpu_seconds(two_stages) if stages else float("nan")
    return {
        "section": "throughput",
        "videos": len(infos),
        "clips": clips,
        "decode_only_clips_per_cpu_s": round(clips / t_decode, 3),
        "cheap_signals_clips_per_cpu_s": round(clips / t_cheap, 3),
        "all_signals_clips_per_cpu_s": round(clips / t_all, 3),
        "cheap_over_decode": round(t_decode / t_cheap, 3),
        "all_over_decode": round(t_decode / t_all, 3),
        "target_all_over_decode": ">= 0.5",
        "cpu_s": {"decode_only": round(t_decode, 2), "cheap": round(t_cheap, 2), "all": round(t_all, 2)},
        # Whole per-video stages (probe, decode, shot detection, all signals, Parquet), in-process.
        "stages_cpu_s": {"clips_then_signals": round(t_two, 2)},
        "stages_over_decode": {"clips_then_signals": round(t_decode / t_two, 3)},
        "all_wall_s_by_signal": {k: round(v, 2) for k, v in sorted(wall.items(), key=lambda kv: -kv[1])},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=["dedup"],
        help=f"sections, comma- or space-separated: {','.join(SECTIONS)}",
    )
    parser.add_argument("--rows", nargs="+", type=int, default=[300_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument(
        "--max-copy-distance", type=float, default=0.06, help="copies lie up to this far from their original"
    )
    parser.add_argument("--videos", nargs="+", type=int, default=[400, 1600], help="driver_rss: corpus sizes")
    parser.add_argument("--signals", choices=["all", "cheap"], default="all", help="driver_rss: signal set")
    parser.add_argument("--cpus", type=int, default=2, help="driver_rss: CPUs of the local Ray")
    parser.add_argument("--root", type=Path, default=Path("/tmp/vf_driver_rss"), help="driver_rss: corpora")
    parser.add_argument(
        "--corpus", type=Path, default=Path("/tmp/vf_demo_corpus"), help="throughput: demo corpus folder"
    )
    parser.add_argument("--repeat", type=int, default=1, help="throughput: passes each, the cheapest kept")
    parser.add_argument(
        "--no-stages",
        action="store_true",
        help="throughput: skip the whole-stage rows (two runs of the chain)",
    )
    args = parser.parse_args()
    sections = [name for value in args.only for name in value.split(",") if name]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    load = os.getloadavg()
    for section in sections:
        if section == "driver_rss":
            driver_rss_rows(args.videos, args.root, args.signals, args.cpus)
        if section == "throughput":
            row = in_child(throughput_row, args.corpus, args.repeat, not args.no_stages)
            row["load_avg_1m"] = round(load[0], 2)
            print(json.dumps(row), flush=True)
        if section == "dedup":
            for n in args.rows:
                row = in_child(dedup_row, n, args.dim, args.max_copy_distance)
                row["load_avg_1m"] = round(load[0], 2)
                row["cpus"] = os.cpu_count()
                print(json.dumps(row), flush=True)
                load = os.getloadavg()


if __name__ == "__main__":
    main()

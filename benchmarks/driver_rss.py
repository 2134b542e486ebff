"""Driver peak RSS of the streaming curation stages against corpus size (issue 16: 4× videos ≤ 1.1×).

Usage::

    .venv/bin/python benchmarks/driver_rss.py [--videos 400 1600] [--signals all|cheap] [--cpus 2]

For each size a corpus of short, distinct videos (`curation.democorpus.scale_corpus`: 128×96, 30
frames at 12 fps, every other one with a cut, 1.5 clips per video) is rendered under `--root`. A fresh
child process (the driver) starts a local Ray with `--cpus` CPUs and runs the streaming stages of
`curation.pipeline` over the batch: `make_clips` then `compute_signals` (Ray Data actor pools,
part files written by the workers). Each row is printed as JSON: videos, clips and quarantine
rows written, wall seconds, per-clip seconds, the driver's peak RSS (`ru_maxrss`, whole life of
the process, imports included) and its RSS once Ray was up. Dedup and tiers, which compare every
clip with every other, are not part of this measure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.democorpus.scale_corpus import render_scale_corpus  # noqa: E402


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


def _child(args: tuple[Any, ...], queue: Any) -> None:
    queue.put(driver_row(*args))


def driver_rss_rows(videos: list[int], root: Path, signals: str, cpus: int) -> list[dict[str, Any]]:
    """One row per corpus size, each from a fresh driver process; the last row adds the ratio."""
    rows = []
    context = multiprocessing.get_context("spawn")
    for count in videos:
        corpus = root / f"raw_{count}" / f"synthetic{count}"
        render_scale_corpus(corpus, count)
        queue = context.Queue()
        child = context.Process(target=_child, args=((corpus, root / f"out_{count}", signals, cpus), queue))
        child.start()
        row = queue.get()
        child.join()
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", nargs="+", type=int, default=[400, 1600])
    parser.add_argument("--signals", choices=["all", "cheap"], default="all")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("/tmp/vf_driver_rss"))
    args = parser.parse_args()
    driver_rss_rows(args.videos, args.root, args.signals, args.cpus)


if __name__ == "__main__":
    main()

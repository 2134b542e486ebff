"""Curation at scale: sections that each print JSON rows (one per size) on stdout.

Usage::

    .venv/bin/python benchmarks/curation_scale.py --only dedup [--rows 300000 1000000] [--dim 256]

Sections (`--only` picks some; default all):

- `dedup`: `curation.dedup.duplicate_groups` on synthetic embeddings with planted near-duplicate
  groups. Background rows come from concept clusters (same-cluster cosine distance ~0.4, so the
  index sees structure like real embeddings); 10 % of the rows are planted copies of a background
  row at cosine distance ≤ `--max-copy-distance` (0.06) from it (copies of one original then lie
  ≤ 0.1 apart; 0.09 plants copies near the 0.1 threshold). Reported: recall
  (planted copies grouped with their original), wrongly merged rows (rows whose group holds a row
  of another planted group), wall time, and the peak RSS of a child process running the section
  alone (so sizes do not share a high-water mark). Targets (issue 16): 300,000 × 256 recall ≥ 99 %,
  < 0.1 % wrongly merged, ≤ 240 s, ≤ 4 GiB; 1,000,000 × 256 ≤ 900 s.
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=["dedup"], default=["dedup"])
    parser.add_argument("--rows", nargs="+", type=int, default=[300_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument(
        "--max-copy-distance", type=float, default=0.06, help="copies lie up to this far from their original"
    )
    args = parser.parse_args()
    load = os.getloadavg()
    for section in args.only:
        if section == "dedup":
            for n in args.rows:
                row = in_child(dedup_row, n, args.dim, args.max_copy_distance)
                row["load_avg_1m"] = round(load[0], 2)
                row["cpus"] = os.cpu_count()
                print(json.dumps(row), flush=True)
                load = os.getloadavg()


if __name__ == "__main__":
    main()

"""Rater app under load: R concurrent raters × P ratings each, over HTTP, on SQLite and on PostgreSQL.

Usage::

    .venv/bin/python benchmarks/rater_load.py [--scales 20x50,50x100] [--backends sqlite,postgres]
                                              [--out benchmarks/results/rater_load_cpu.json]

For each backend and scale it builds a fresh store (a SQLite WAL file, or a database on a private
PostgreSQL server started here with `LocalPostgres` and stopped at the end), a campaign of
R × P / 2 prompts × 2 models with k = 2 raters per pair (exactly P assignments per rater), starts
the app (`videofoundry serve raters`, one uvicorn process on 127.0.0.1), and lets R client threads rate
their whole queue at once. Every 5th submission is sent twice (a client retry with the same
submission id), so the exact count checks idempotency as well as loss.

Reported per run: latency of the rating POSTs seen by the clients (p50, p95, max; retries included),
wall time, ratings per second, and the rows stored against the R × P expected. Client threads and
the server share the machine, so the latencies include client-side queueing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from evaluation.human_eval import (  # noqa: E402
    DIMENSIONS,
    HumanEvalConfig,
    ModelSpec,
    PromptSpec,
    assign_raters,
    create_campaign,
    create_rater,
    open_store,
)
from evaluation.human_eval.local_postgres import LocalPostgres  # noqa: E402
from evaluation.human_eval.media import SyntheticGenerator  # noqa: E402
from evaluation.human_eval.schema import Rating  # noqa: E402
from orchestration.raters_process import spawn_raters_server  # noqa: E402

RETRY_EVERY = 5


def _rate_queue(base: str, token: str) -> tuple[list[float], int]:
    """One rater: rate every assignment in their queue; returns (POST latencies in s, errors)."""
    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        queue = client.get("/api/assignments").json()
        for index, assignment in enumerate(queue):
            body = {
                "client_submission_id": uuid.uuid4().hex,
                "answers": {
                    dim: ("left", "same", "right")[(index + i) % 3] for i, dim in enumerate(DIMENSIONS)
                },
                "elapsed_ms": 1000 + index,
            }
            url = f"/api/assignments/{assignment['assignment_id']}/ratings"
            for _ in range(2 if index % RETRY_EVERY == 0 else 1):
                started = time.perf_counter()
                response = client.post(url, json=body)
                latencies.append(time.perf_counter() - started)
                errors += response.status_code not in (200, 201)
    return latencies, errors


def run_once(db_url: str, raters: int, per_rater: int, work: Path) -> dict[str, object]:
    config = HumanEvalConfig.preset(
        "tiny", db_url=db_url, raters_per_pair=2, gold_fraction=0.0, duplicate_fraction=0.0
    )
    synthetic = SyntheticGenerator(work / "videos")
    files = {ref: synthetic("a load-test clip", 0, ref) for ref in ("m-a", "m-b")}
    prompts = [PromptSpec(f"p{i:05d}", f"prompt number {i}") for i in range(raters * per_rater // 2)]
    setup_started = time.monotonic()
    campaign = create_campaign(
        config, "load", prompts, [ModelSpec("A", "m-a"), ModelSpec("B", "m-b")],
        lambda prompt, seed, ref: files[ref], config, work / "videos",
    )  # fmt: skip
    accounts = [create_rater(config, f"rater{i:03d}") for i in range(raters)]
    assign_raters(config, campaign, [identity.id for identity, _ in accounts], config)
    setup_s = time.monotonic() - setup_started
    proc, base = spawn_raters_server(db_url)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=raters) as pool:
            results = list(pool.map(lambda account: _rate_queue(base, account[1]), accounts))
        wall_s = time.monotonic() - started
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    latencies = sorted(t for per_rater_latencies, _ in results for t in per_rater_latencies)
    with open_store(db_url).session() as session:
        stored = int(session.scalar(select(func.count(Rating.id))) or 0)
        rated = int(session.scalar(select(func.count(func.distinct(Rating.assignment_id)))) or 0)
    open_store(db_url).dispose()
    expected = raters * per_rater
    return {
        "raters": raters,
        "per_rater": per_rater,
        "requests": len(latencies),
        "errors": sum(errors for _, errors in results),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * latencies[int(0.95 * (len(latencies) - 1))], 1),
        "max_ms": round(1000 * latencies[-1], 1),
        "wall_s": round(wall_s, 1),
        "ratings_per_s": round(expected / wall_s, 1),
        "stored": stored,
        "distinct_assignments": rated,
        "expected": expected,
        "exact": stored == rated == expected,
        "setup_s": round(setup_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="20x50,50x100", help="RATERSxPER_RATER, comma separated")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()
    scales = [tuple(int(n) for n in scale.split("x")) for scale in args.scales.split(",")]
    backends = args.backends.split(",")
    rows = []
    load_before = os.getloadavg()[0]
    postgres = LocalPostgres().start() if "postgres" in backends else None
    try:
        for backend in backends:
            for index, (raters, per_rater) in enumerate(scales):
                with tempfile.TemporaryDirectory(prefix="vf-rater-load-") as tmp:
                    work = Path(tmp)
                    if backend == "sqlite":
                        db_url = f"sqlite:///{work / 'he.db'}"
                    elif postgres is not None:
                        db_url = postgres.create_database(f"load_{index}")
                    else:
                        raise SystemExit(f"unknown backend {backend!r}: use sqlite or postgres")
                    row = {"backend": backend, **run_once(db_url, raters, per_rater, work)}
                rows.append(row)
                print(
                    f"{backend:<8} {raters:>3} × {per_rater:<4} p50 {row['p50_ms']:>7} ms  p95 {row['p95_ms']:>7} ms  "
                    f"max {row['max_ms']:>7} ms  {row['ratings_per_s']:>6}/s  stored {row['stored']}/{row['expected']}"
                    f"  errors {row['errors']}",
                    flush=True,
                )
    finally:
        if postgres is not None:
            postgres.stop()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "machine": platform.platform(),
            "python": platform.python_version(),
            "cpus": len(os.sched_getaffinity(0)),
            # Other work on the machine shows here: the runs share its CPUs with it.
            "load_avg_1m": {"before": load_before, "after": os.getloadavg()[0]},
        }
        args.out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2) + "\n")
    if not all(row["exact"] and row["errors"] == 0 for row in rows):
        raise SystemExit("rater_load: a run lost, duplicated or refused ratings")


if __name__ == "__main__":
    main()

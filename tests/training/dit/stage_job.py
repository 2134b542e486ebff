"""A planned stage trained by the launcher in this process, for the kill -9 test in test_resume.

    python tests/training/dit/stage_job.py <plan.json> <throttle seconds>

Prints `step <k>` (flushed) after each step and sleeps the throttle, so the test can kill the
process mid-stage.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from training.dit.run import StageJob
from training.dit.stages import StagePlan
from training.launch import LaunchSettings, launch


def main(plan_path: Path, throttle_s: float) -> None:
    def report(step: int) -> None:
        print(f"step {step}", flush=True)
        time.sleep(throttle_s)

    job = StageJob(StagePlan.load(plan_path), with_samples=False, step_hook=report)
    launch(job, LaunchSettings(mode="local"))


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]))

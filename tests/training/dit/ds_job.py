"""Run by each of 2 DeepSpeed ranks in test_deepspeed: train, drop the last checkpoint, resume.

    python tests/training/dit/ds_job.py <plan.json>

One process launch covers both halves (DeepSpeed's import dominates a CPU launch): the second
`train_stage` builds a fresh engine that must restore the ZeRO-partitioned state from disk.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from training.deepspeed_backend import DeepSpeedBackend
from training.dit.stages import StagePlan, train_stage


def main(plan_path: Path) -> None:
    torch.set_num_threads(1)
    backend = DeepSpeedBackend(zero_stage=2)
    plan = StagePlan.load(plan_path)
    first = train_stage(plan, backend=backend, with_samples=False)
    backend.barrier()
    if backend.is_main:
        shutil.copytree(plan.checkpoint_dir / "step_000000004", plan.checkpoint_dir.parent / "first_step_4")
        shutil.rmtree(plan.checkpoint_dir / "step_000000004")
    backend.barrier()
    second = train_stage(plan, backend=backend, with_samples=False)
    if backend.is_main:
        print(
            "RESULT " + json.dumps({"first": first.to_metrics(), "second": second.to_metrics()}), flush=True
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Launching a planned DiT stage on Ray Train workers (`TorchTrainer`), or in this process.

`launch_stage(plan, ...)`: with `launcher="ray"`, Ray Train starts `num_workers` workers (local
loopback Ray by default via `curation.ray_runtime.ensure_ray`; `ray://head:10001` at scale), creates
the process group (gloo on CPU, NCCL on GPU) and each worker runs `train_stage` on a DeepSpeed
backend (ZeRO stage from the config) or, for one worker without ZeRO, the plain backend. Rank 0
writes `stage_result.json` (training.dit.stages); that file, not Ray's Result, carries the outcome
back, so the driver reads the same thing whichever way the stage ran. `launcher="local"` runs
`train_stage` in this process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from training.dit.stages import StagePlan, read_stage_result, train_stage


def _ray_worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    from training.backends import Backend

    os.environ.setdefault("OMP_NUM_THREADS", str(loop_config["threads"]))
    plan = StagePlan.load(Path(loop_config["plan"]))
    zero_stage = loop_config["zero_stage"]
    backend: Backend
    if zero_stage is None:
        backend = Backend(precision=plan.config.precision)
    else:
        from training.dit.deepspeed_backend import DeepSpeedBackend

        backend = DeepSpeedBackend(zero_stage, precision=plan.config.precision)
    result = train_stage(Path(loop_config["plan"]), backend=backend, resume=True)
    ray.train.report({"steps_done": result.steps_done, "resumed_from": result.resumed_from})


def launch_stage(
    plan_path: Path,
    launcher: Literal["local", "ray"] = "local",
    num_workers: int = 1,
    use_gpu: bool = False,
    zero_stage: int | None = None,
    ray_address: str | None = None,
    cpus_per_worker: int = 1,
) -> dict[str, Any]:
    """Train the planned stage; returns its `stage_result.json` content."""
    plan_path = Path(plan_path).resolve()
    plan = StagePlan.load(plan_path)
    if num_workers > 1 and zero_stage is None:
        raise ValueError(
            f"{num_workers} workers need DeepSpeed: set zero_stage to 2 or 3 (plain DDP is not wired)"
        )
    if launcher == "local":
        if num_workers != 1:
            raise ValueError("launcher 'local' runs one process; use launcher 'ray' for several workers")
        train_stage(plan_path, resume=True)
    else:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        from curation.ray_runtime import ensure_ray

        ensure_ray(ray_address, None if ray_address else max(2, num_workers * cpus_per_worker))
        trainer = TorchTrainer(
            _ray_worker,
            train_loop_config={"plan": str(plan_path), "zero_stage": zero_stage, "threads": cpus_per_worker},
            scaling_config=ScalingConfig(
                num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
            ),
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            run_config=RunConfig(
                name=f"dit_{plan.stage}", storage_path=str(plan.checkpoint_dir.parent / "ray_results")
            ),
        )
        trainer.fit()
    result = read_stage_result(plan.checkpoint_dir.parent, plan.stage)
    if result is None:
        raise RuntimeError(f"stage {plan.stage} finished without a result file in {plan.checkpoint_dir}")
    return result

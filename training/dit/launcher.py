"""Launching a planned DiT stage on Ray Train workers (`TorchTrainer`), or in this process.

`launch_stage(plan, ...)`: with `launcher="ray"`, Ray Train starts `num_workers` workers (local
loopback Ray by default via `media.ray_cluster.ensure_ray`; `ray://head:10001` at scale), creates
the process group (gloo on CPU, NCCL on GPU) and each worker runs `train_stage` on a DeepSpeed
backend (ZeRO stage from the config) or, for one worker without ZeRO, the plain backend. Rank 0
writes `stage_result.json` (training.dit.stages); that file, not Ray's Result, carries the outcome
back, so the driver reads the same thing whichever way the stage ran. `launcher="local"` runs
`train_stage` in this process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from training.dit.config import DiTTrainConfig
from training.dit.latent_cache import ClipRecord
from training.dit.stages import StagePlan, prepare_stage, read_stage_result, train_stage
from training.dit.trainer import StageTracking


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

        from media.ray_cluster import ensure_ray

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


def records_fingerprint(records: Sequence[ClipRecord]) -> str:
    """`records:<sha12>` over ids, paths, frame ranges, prompts and weights (a data version without DVC)."""
    digest = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.clip_id):
        digest.update(
            f"{r.clip_id}|{r.video_path}|{r.start_frame}|{r.end_frame}|{r.prompt}|{r.weight}\n".encode()
        )
    return f"records:{digest.hexdigest()[:12]}"


def train_dit_stage(
    config: DiTTrainConfig,
    stage: str,
    records: Sequence[ClipRecord],
    checkpoint_root: Path,
    latent_root: Path,
    tracking: StageTracking,
    *,
    vae_path: Path | None = None,
    resume: bool = False,
    launcher: Literal["local", "ray"] | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """The one entry point of CLI and Dagster: plan the stage (cache latents) and train it.

    `launcher` None picks Ray whenever the config asks for DeepSpeed or several workers.
    """
    if tracking.data_version == "unversioned":
        tracking = dataclasses.replace(tracking, data_version=records_fingerprint(records))
    plan = prepare_stage(
        config, stage, records, checkpoint_root, latent_root, tracking, vae_path=vae_path, resume=resume
    )
    chosen = launcher or ("ray" if config.zero_stage is not None or config.num_workers > 1 else "local")
    return launch_stage(
        plan,
        chosen,
        num_workers=config.num_workers,
        use_gpu=config.use_gpu,
        zero_stage=config.zero_stage,
        ray_address=ray_address,
    )

"""Launch `VAETrainer` on DeepSpeed workers with Ray Train's `TorchTrainer`.

Each worker runs the same trainer with a `DeepSpeedBackend` (ZeRO stage from the config); Ray
creates the process group (gloo on CPU, NCCL on GPU) and places workers (`num_workers`, `use_gpu`).
`ray_address=None` starts a local loopback Ray; `ray://head:10001` joins a cluster. Rank 0 evaluates,
logs to MLflow and publishes checkpoints; its `TrainResult` comes back through `ray.train.report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.vae.config import VAETrainConfig
from training.vae.data import MediaItem
from training.vae.trainer import Evaluator, SampleMaker, TrackingSettings, TrainResult

RESULT_FILE = "ray_result.json"


def _worker(loop_config: dict[str, Any]) -> None:
    import ray.train

    from training.deepspeed_backend import DeepSpeedBackend
    from training.vae.trainer import VAETrainer

    config: VAETrainConfig = loop_config["config"]
    assert config.zero_stage is not None
    backend = DeepSpeedBackend(config.zero_stage, config.precision)
    trainer = VAETrainer(
        config,
        loop_config["data_paths"],
        loop_config["checkpoint_dir"],
        loop_config["tracking"],
        backend=backend,
        evaluator=loop_config["evaluator"],
        sample_maker=loop_config["sample_maker"],
    )
    result = trainer.train(max_steps=loop_config["max_steps"], resume=loop_config["resume"])
    summary = {
        "steps_done": result.steps_done,
        "resumed_from": result.resumed_from,
        "evals": result.evals,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "run_id": result.run_id,
        "samples_per_second": result.samples_per_second,
        "world_size": backend.world_size,
    }
    if backend.is_main:
        # Ray Train keeps only checkpoint-attached metrics in its Result; rank 0's summary travels
        # through the (shared) checkpoint directory instead.
        out = Path(loop_config["checkpoint_dir"]) / RESULT_FILE
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(summary))
        os.replace(tmp, out)
    ray.train.report({k: v for k, v in summary.items() if k != "evals"})


def launch_ray_training(
    config: VAETrainConfig,
    data_paths: Sequence[Path | MediaItem],
    checkpoint_dir: Path,
    tracking: TrackingSettings,
    evaluator: Evaluator | None,
    sample_maker: SampleMaker | None,
    max_steps: int | None,
    resume: bool,
    ray_address: str | None = None,
) -> TrainResult:
    """Run the trainer on `config.num_workers` Ray Train workers; returns rank 0's result."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from media.ray_cluster import ensure_ray

    ensure_ray(ray_address, None if ray_address else max(2, config.num_workers))
    checkpoint_dir = Path(checkpoint_dir).resolve()
    trainer = TorchTrainer(
        _worker,
        train_loop_config={
            "config": config,
            "data_paths": [p if isinstance(p, MediaItem) else Path(p).resolve() for p in data_paths],
            "checkpoint_dir": checkpoint_dir,
            "tracking": tracking,
            "evaluator": evaluator,
            "sample_maker": sample_maker,
            "max_steps": max_steps,
            "resume": resume,
        },
        scaling_config=ScalingConfig(
            num_workers=config.num_workers, use_gpu=config.use_gpu, resources_per_worker={"CPU": 1}
        ),
        torch_config=TorchConfig(backend="nccl" if config.use_gpu else "gloo"),
        run_config=RunConfig(name="vae", storage_path=str(checkpoint_dir.parent / "ray_results")),
    )
    result_file = checkpoint_dir / RESULT_FILE
    result_file.unlink(missing_ok=True)
    trainer.fit()
    if not result_file.is_file():
        raise RuntimeError(f"Ray training finished without rank 0's summary ({result_file})")
    metrics = json.loads(result_file.read_text())
    checkpoint = metrics.get("checkpoint")
    return TrainResult(
        steps_done=int(metrics.get("steps_done", 0)),
        resumed_from=int(metrics.get("resumed_from", 0)),
        evals=list(metrics.get("evals", [])),
        checkpoint=Path(checkpoint) if checkpoint else None,
        run_id=metrics.get("run_id"),
        samples_per_second=float(metrics.get("samples_per_second", 0.0)),
    )

"""The one launcher of both trainers: a training job in this process, or on N Ray Train workers.

A job is a picklable callable `job(backend) -> TrainResult` that also names itself and its
checkpoint folder (`TrainJob`; the VAE's is `training.vae.run.VAEJob`, a DiT stage's
`training.dit.run.StageJob`). `launch(job, settings)`:

- local: builds this process's backend (`training.backends.make_backend`) and calls the job;
- ray: a Ray Train `TorchTrainer` with `settings.workers` workers (local loopback Ray by default
  via `media.ray_cluster.ensure_ray`, `ray://head:10001` at scale). Ray creates the process group
  (gloo on CPU, NCCL on GPU); each worker builds its backend the same way (FSDP2 when `sharding`
  is zero2/full, DeepSpeed ZeRO when `zero_stage` is set, else DDP; Ulysses groups of
  `sequence_parallel` ranks) and calls the job. At every training checkpoint each worker calls
  `ray.train.report({"step", "loss"})` with a pointer checkpoint on rank 0 (a small folder naming
  the training checkpoint: Ray Train keeps only checkpoint-attached metrics); at the end rank 0
  reports `TrainResult.to_metrics()` the same way and the driver rebuilds the `TrainResult` from
  `Result.metrics`.

Fault tolerance: `FailureConfig(max_failures=settings.max_failures)`. When a worker dies, Ray Train
restarts the worker group and the job runs again; the trainers resume from their own latest
training checkpoint (atomic, so the restart finds a complete one), so the run finishes at the
same final step. Ray's own records go to `<checkpoint folder's parent>/ray_results/<job name>`.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from training.backends import Backend, make_backend
from training.results import TrainResult

POINTER_FILE = "training_checkpoint.json"


class TrainJob(Protocol):
    """What `launch` runs: the same object in this process or pickled to every Ray worker."""

    @property
    def name(self) -> str:
        """Run name (Ray's record folder), e.g. "vae" or "dit_image_256"."""
        ...

    @property
    def checkpoint_dir(self) -> Path:
        """Where the job's training checkpoints go."""
        ...

    def __call__(self, backend: Backend) -> TrainResult: ...


@dataclass(frozen=True)
class LaunchSettings:
    """How a job runs.

    Attributes:
        mode: "local" (this process), "ray" (Ray Train), or "auto": Ray whenever the run needs
            several workers or DeepSpeed.
        workers: Ray Train workers (one per GPU at scale); 1 in local mode.
        use_gpu: each Ray worker asks for a GPU (NCCL process group).
        zero_stage: None: one process or DDP; 0-3: DeepSpeed ZeRO.
        sharding: none | zero2 | full (FSDP2, training.fsdp_backend).
        sequence_parallel: Ulysses group size (workers must be a multiple).
        precision: auto | bf16 | fp16 | fp32 (training.backends).
        ray_address: None starts a local loopback Ray; "host:port" or "ray://head:10001" joins one.
        cpus_per_worker: CPUs Ray reserves per worker.
        max_failures: worker-group restarts Ray Train allows (each resumes from the latest checkpoint).
    """

    mode: Literal["auto", "local", "ray"] = "auto"
    workers: int = 1
    use_gpu: bool = False
    zero_stage: int | None = None
    sharding: str = "none"
    sequence_parallel: int = 1
    precision: str = "auto"
    ray_address: str | None = None
    cpus_per_worker: int = 1
    max_failures: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {self.workers}")
        if self.mode not in ("auto", "local", "ray"):
            raise ValueError(f"launch mode must be auto, local or ray, got {self.mode!r}")
        if self.mode == "local" and self.workers > 1:
            raise ValueError("mode 'local' runs one process; use mode 'ray' for several workers")

    @classmethod
    def for_config(cls, config: Any, **overrides: Any) -> LaunchSettings:
        """From a trainer config's `num_workers`, `use_gpu`, `zero_stage`, `precision` and, where the
        config has them, `sharding` and `sequence_parallel` (VAE or DiT)."""
        values = {
            "workers": config.num_workers,
            "use_gpu": config.use_gpu,
            "zero_stage": config.zero_stage,
            "sharding": getattr(config, "sharding", "none"),
            "sequence_parallel": getattr(config, "sequence_parallel", 1),
            "precision": config.precision,
            "max_failures": getattr(config, "max_failures", 0),
        }
        return cls(**(values | overrides))

    @property
    def uses_ray(self) -> bool:
        if self.mode == "auto":
            return self.workers > 1 or self.zero_stage is not None
        return self.mode == "ray"


def launch(job: TrainJob, settings: LaunchSettings) -> TrainResult:
    """Run `job` as `settings` say; returns rank 0's result (see module docstring)."""
    if not settings.uses_ray:
        return job(_backend(settings))
    return _fit(job, settings)


def _backend(settings: LaunchSettings) -> Backend:
    return make_backend(
        settings.zero_stage, settings.precision, settings.sharding, settings.sequence_parallel
    )


def _report(metrics: dict[str, Any], path: Path | None, is_main: bool) -> None:
    """`ray.train.report` on every rank; rank 0 attaches a pointer checkpoint naming `path`."""
    import ray.train

    with tempfile.TemporaryDirectory() as pointer_dir:
        checkpoint = None
        if is_main:
            pointer = {"checkpoint": str(path) if path else None}
            (Path(pointer_dir) / POINTER_FILE).write_text(json.dumps(pointer))
            checkpoint = ray.train.Checkpoint.from_directory(pointer_dir)
        ray.train.report(metrics, checkpoint=checkpoint)


def _ray_worker(loop_config: dict[str, Any]) -> None:
    job: TrainJob = loop_config["job"]
    settings: LaunchSettings = loop_config["settings"]
    backend = _backend(settings)
    backend.checkpoint_reporter = lambda metrics, path: _report(metrics, path, backend.is_main)
    result = job(backend)
    _report(result.to_metrics(), result.checkpoint, backend.is_main)


def _fit(job: TrainJob, settings: LaunchSettings) -> TrainResult:
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from media.ray_cluster import ensure_ray

    ensure_ray(
        settings.ray_address,
        None if settings.ray_address else max(2, settings.workers * settings.cpus_per_worker),
    )
    storage = Path(job.checkpoint_dir).resolve().parent / "ray_results"
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"job": job, "settings": settings},
        scaling_config=ScalingConfig(
            num_workers=settings.workers,
            use_gpu=settings.use_gpu,
            resources_per_worker={"CPU": settings.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
        run_config=RunConfig(
            name=job.name,
            storage_path=str(storage),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            failure_config=FailureConfig(max_failures=settings.max_failures),
        ),
    )
    fitted = trainer.fit()
    if not fitted.metrics:
        raise RuntimeError(f"Ray Train run {job.name} finished without rank 0's report (see {storage})")
    return TrainResult.from_metrics(fitted.metrics)

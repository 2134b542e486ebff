"""Exact resume of a DiT stage: in-process interruption, and kill -9 of a worker process (slow)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.dit.fixtures import plan_first_stage, write_clips
from training.dit.config import DiTTrainConfig
from training.dit.stages import PLAN_FILE, StagePlan, finished_stage, train_stage
from training.dit.trainer import DiTTrainer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # also makes CPU numerics identical to OMP_NUM_THREADS=1 workers
    yield
    torch.set_num_threads(threads)


def _config(stage: str, steps: int, every: int) -> DiTTrainConfig:
    tiny = DiTTrainConfig.preset("tiny", checkpoint_every=every, sample_prompts=())
    stages = tuple(
        s.model_copy(update={"steps": steps, "warmup_steps": 3}) if s.name == stage else s
        for s in tiny.stages
    )
    return tiny.model_copy(update={"stages": stages})


class _Crash(Exception):
    pass


def _trainer(plan: StagePlan, directory: Path, hook=None) -> DiTTrainer:
    return DiTTrainer(
        plan.config,
        plan.stage,
        plan.samples,
        load_file(str(plan.empty_prompt_path)),
        directory,
        sample_posterior=plan.sample_posterior,
        step_hook=hook,
    )


def test_interrupted_stage_resumes_bit_exactly(tmp_path):
    """video_low_long (images + two video buckets, text dropout, warm-up): crash at 5, resume from 4."""
    records = write_clips(tmp_path / "clips", count=3)
    config = _config("video_low_long", steps=8, every=4)
    # A plan of the first stage (no predecessor needed) with video_low_long's samples swapped in.
    first_plan = plan_first_stage(config, records, tmp_path, "unused")
    from training.dit.encoders import make_text_encoder, make_vae
    from training.dit.latent_cache import LatentCache

    cache = LatentCache(
        tmp_path / "latents",
        make_vae(config, None),
        make_text_encoder(config),
        aspect_ratios=config.aspect_ratios,
    )
    samples, _ = cache.build(records, config.stage("video_low_long"), progress=False)
    plan = dataclasses.replace(first_plan, stage="video_low_long", samples=samples)

    straight = _trainer(plan, tmp_path / "straight")
    straight.train(resume=False)

    def crash(step: int) -> None:
        if step == 5:
            raise _Crash

    with pytest.raises(_Crash):
        _trainer(plan, tmp_path / "crashed", crash).train(resume=False)
    resumed = _trainer(plan, tmp_path / "crashed")
    result = resumed.train(resume=True)
    assert result.resumed_from == 4 and result.steps_done == 8
    for name, tensor in straight.dit.module.state_dict().items():
        assert torch.equal(tensor, resumed.dit.module.state_dict()[name]), name
    for name, tensor in straight.ema.state_dict().items():
        assert torch.equal(tensor, resumed.ema.state_dict()[name]), name
    opt_a, opt_b = straight.dit.state_dict(), resumed.dit.state_dict()
    assert opt_a["scheduler"] == opt_b["scheduler"]
    for key, state in opt_a["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], opt_b["optimizer"]["state"][key]["exp_avg_sq"])
    assert straight.loss_history == resumed.loss_history


@pytest.mark.slow
def test_kill_9_mid_stage_loses_no_step_beyond_the_last_checkpoint(tmp_path):
    records = write_clips(tmp_path / "clips", count=2)
    config = _config("image_256", steps=24, every=5)
    plan = plan_first_stage(config, records, tmp_path, "ckpt")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    job_script = REPO / "tests" / "training" / "dit" / "stage_job.py"
    worker = subprocess.Popen(
        [sys.executable, str(job_script), str(plan.checkpoint_dir / PLAN_FILE), "0.3"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    last = 0
    assert worker.stdout is not None
    for line in worker.stdout:
        if line.startswith("step "):
            last = int(line.split()[1])
            if last >= 12:
                break
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL and 12 <= last < 24
    assert finished_stage(tmp_path / "ckpt", "image_256") is None
    stage_dir = tmp_path / "ckpt" / "image_256"
    last_checkpoint = max(int(p.name.removeprefix("step_")) for p in stage_dir.glob("step_*"))
    assert 5 * (last // 5) <= last_checkpoint <= last + 5  # checkpoints every 5 steps

    result = train_stage(plan, with_samples=False)
    assert result.resumed_from == last_checkpoint and result.steps_done == 24
    finished = finished_stage(tmp_path / "ckpt", "image_256")
    assert finished is not None and finished.checkpoint == result.checkpoint and finished.steps == 24

    reference_plan = plan_first_stage(config, records, tmp_path, "ref")
    reference = train_stage(reference_plan, with_samples=False)
    assert reference.checkpoint is not None and result.checkpoint is not None
    killed, straight = (
        load_file(str(result.checkpoint / "dit.safetensors")),
        load_file(str(reference.checkpoint / "dit.safetensors")),
    )
    assert all(torch.equal(killed[k], straight[k]) for k in straight)


@pytest.mark.slow
def test_ray_train_launcher_runs_a_planned_stage_on_deepspeed_and_ddp_workers(tmp_path):
    """TorchTrainer on a local loopback Ray: 2 gloo workers, DeepSpeed ZeRO-2 ranks, then DDP ranks."""
    from media.ray_cluster import shutdown_ray
    from training.dit.run import StageJob
    from training.launch import LaunchSettings, launch

    records = write_clips(tmp_path / "clips", count=2)
    config = _config("image_256", steps=3, every=3)
    plan = plan_first_stage(config, records, tmp_path, "ckpt")
    ddp_plan = plan_first_stage(config, records, tmp_path, "ddp")
    try:
        result = launch(StageJob(plan), LaunchSettings(mode="ray", workers=2, zero_stage=2))
        ddp = launch(StageJob(ddp_plan), LaunchSettings(workers=2))  # auto: 2 workers → Ray
    finally:
        shutdown_ray()
    # Typed results rebuilt from the metrics rank 0 reported to Ray Train.
    assert result.name == "image_256" and result.steps_done == 3 and result.world_size == 2
    assert result.checkpoint is not None and result.checkpoint.name == "step_000000003"
    shards = sorted((result.checkpoint / "deepspeed" / "dit" / "state").glob("*optim_states.pt"))
    assert len(shards) == 2  # one ZeRO partition per Ray worker
    assert (tmp_path / "ckpt" / "ray_results" / "dit_image_256").is_dir()
    assert ddp.world_size == 2 and ddp.steps_done == 3 and ddp.checkpoint is not None
    assert not (ddp.checkpoint / "deepspeed").exists()  # DDP keeps plain optimizer state dicts
    assert (
        result.final_loss > 0 and ddp.final_loss > 0 and set(ddp.bucket_losses) == set(result.bucket_losses)
    )


@pytest.mark.slow
def test_resumed_stage_result_keeps_the_versions_registered_before_the_crash(tmp_path):
    """L10: the result of a resumed stage lists the versions its run registered before the crash."""
    from mlflow.tracking import MlflowClient

    from training.dit.registry import REGISTERED_MODEL
    from training.tracking import TrackingSettings

    plan = plan_first_stage(
        _config("image_256", steps=6, every=2), write_clips(tmp_path / "clips", count=2), tmp_path, "ckpt"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking = TrackingSettings(uri=uri, artifact_location=tmp_path / "artifacts", experiment="l10")

    def trainer(hook=None) -> DiTTrainer:
        return DiTTrainer(
            plan.config,
            plan.stage,
            plan.samples,
            load_file(str(plan.empty_prompt_path)),
            plan.checkpoint_dir,
            tracking=tracking,
            sample_posterior=plan.sample_posterior,
            step_hook=hook,
        )

    def crash(step: int) -> None:
        if step == 3:
            raise _Crash

    first = trainer(crash)
    with pytest.raises(_Crash):
        first.train(resume=False)
    assert first.model_versions == ["1"]  # the checkpoint at step 2
    result = trainer().train(resume=True)
    assert result.resumed_from == 2 and result.steps_done == 6 and result.run_id == first.run_id
    assert result.model_versions == ("1", "2", "3") and result.model_version == "3"
    registered = MlflowClient(tracking_uri=uri).search_model_versions(f"name='{REGISTERED_MODEL}'")
    assert sorted(int(v.version) for v in registered) == [1, 2, 3]

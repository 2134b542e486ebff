"""The same trainer under DeepSpeed ZeRO-2: exact resume through DeepSpeed's sharded optimizer state
(one process, gloo), and a two-worker Ray Train `TorchTrainer` run (slow)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from tests.training.vae.conftest import micro_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def single_process_group() -> object:
    env = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_RANK": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_deepspeed_zero2_exact_resume(
    tmp_path: Path, clip_paths: list[Path], single_process_group: object
) -> None:
    from training.deepspeed_backend import DeepSpeedBackend
    from training.vae.trainer import VAETrainer

    torch.set_num_threads(1)
    config = micro_config(zero_stage=2, checkpoint_every=2, cpu_threads=1)
    straight = VAETrainer(config, clip_paths, tmp_path / "straight", backend=DeepSpeedBackend(2))
    straight.train(max_steps=4)
    VAETrainer(config, clip_paths, tmp_path / "split", backend=DeepSpeedBackend(2)).train(max_steps=2)
    resumed = VAETrainer(config, clip_paths, tmp_path / "split", backend=DeepSpeedBackend(2))
    result = resumed.train(max_steps=4)
    assert result.resumed_from == 2 and result.steps_done == 4
    assert (tmp_path / "split" / "step_000000002" / "deepspeed" / "vae" / "state").is_dir()
    a, b = straight.vae.module.state_dict(), resumed.vae.module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_ray_train_two_deepspeed_workers(tmp_path: Path, clip_paths: list[Path]) -> None:
    from media.ray_cluster import shutdown_ray
    from model.checkpoints import load_vae
    from training.tracking import TrackingSettings, default_tracking_uri
    from training.vae.run import VAEJob, train_vae

    config = micro_config(zero_stage=2, num_workers=2, checkpoint_every=3, cpu_threads=1)
    uri, artifacts = default_tracking_uri(tmp_path)
    try:
        tracking = TrackingSettings(uri=uri, artifact_location=artifacts)
        result = train_vae(
            VAEJob(config, clip_paths, tmp_path / "ckpt", tracking, max_steps=3), tmp_path / "export"
        )
    finally:
        shutdown_ray()
    # The typed result came back through Ray Train's reported metrics, rank 0's view of the run.
    assert result.name == "vae" and result.steps_done == 3 and result.world_size == 2 and result.run_id
    assert result.checkpoint == (tmp_path / "ckpt" / "step_000000003").resolve()
    assert result.final_loss > 0 and result.data_version == "unversioned"
    shards = sorted(p.name for p in (result.checkpoint / "deepspeed" / "vae" / "state").iterdir())
    assert "zero_pp_rank_1_mp_rank_00_optim_states.pt" in shards  # optimizer state partitioned over 2 ranks
    assert sum(p.numel() for p in load_vae(tmp_path / "export").parameters()) > 0

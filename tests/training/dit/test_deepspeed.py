"""DeepSpeed ZeRO-2 on CPU with 2 processes (gloo): wiring, sharded checkpoint save and exact resume (slow)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.training.dit.fixtures import plan_first_stage, write_clips
from training.checkpointing import load_checkpoint
from training.dit.config import DiTTrainConfig
from training.dit.stages import PLAN_FILE

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch(plan: Path, world: int = 2) -> list[str]:
    """Start `world` ranks of ds_job.py the way torchrun would (env RANK/WORLD_SIZE/LOCAL_RANK/MASTER_*)."""
    base = dict(
        os.environ,
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
    )
    procs = [
        subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "training" / "dit" / "ds_job.py"), str(plan)],
            cwd=REPO,
            env=dict(base, RANK=str(rank), LOCAL_RANK=str(rank)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    outputs = [p.communicate(timeout=400)[0] for p in procs]
    for rank, (proc, out) in enumerate(zip(procs, outputs, strict=True)):
        assert proc.returncode == 0, f"rank {rank} failed:\n{out[-4000:]}"
    return outputs


def test_zero2_two_processes_save_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    records = write_clips(tmp_path / "clips", count=3)
    tiny = DiTTrainConfig.preset("tiny", checkpoint_every=2, sample_prompts=(), zero_stage=2)
    stages = tuple(s.model_copy(update={"steps": 4}) if s.name == "image_256" else s for s in tiny.stages)
    config = tiny.model_copy(update={"stages": stages})
    plan = plan_first_stage(config, records, tmp_path, "ckpt")

    outputs = _launch(plan.checkpoint_dir / PLAN_FILE)
    result = json.loads(next(line for line in outputs[0].splitlines() if line.startswith("RESULT "))[7:])
    assert result["first"]["steps_done"] == 4 and result["first"]["resumed_from"] == 0
    # The second run lost step 4's checkpoint: it resumed from step 2 (partitioned Adam state restored).
    assert result["second"]["resumed_from"] == 2 and result["second"]["steps_done"] == 4

    stage_dir = tmp_path / "ckpt" / "image_256"
    first = tmp_path / "ckpt" / "first_step_4"
    shards = sorted(p.name for p in (first / "deepspeed" / "dit" / "state").glob("*optim_states.pt"))
    assert shards == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    meta = load_checkpoint(first)
    assert meta.metadata["world_size"] == 2 and meta.trainer_state["optim"]["dit"] == {}
    expected = load_file(str(first / "dit.safetensors"))
    start = load_file(str(stage_dir / "step_000000002" / "dit.safetensors"))
    assert any(not torch.equal(expected[k], start[k]) for k in expected)  # steps 3-4 trained
    again = load_file(str(stage_dir / "step_000000004" / "dit.safetensors"))
    for key, tensor in expected.items():
        assert torch.equal(tensor, again[key]), key

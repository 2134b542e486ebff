"""`videofoundry train-dit --sharding full --max-steps N --json` in a workspace, and bad layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from typer.testing import CliRunner

from orchestration.cli import app
from tests.training.dit.test_assets import _write_tables

pytestmark = pytest.mark.slow  # ~40 s: caches latents and trains in a workspace


def test_train_dit_sharded_max_steps_json(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    home = tmp_path / "home"
    _write_tables(home)
    args = ["train-dit", "--stage", "image_256", "--home", str(home)]
    try:
        run = CliRunner().invoke(
            app, [*args, "--sharding", "full", "--workers", "1", "--max-steps", "2", "--json"]
        )
    finally:
        if dist.is_initialized():  # the one-rank FSDP group of this process
            dist.destroy_process_group()
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout.strip().splitlines()[-1])  # tqdm writes to stderr
    assert summary["step"] == 2 and summary["resumed_from"] == 0 and summary["loss"] > 0
    checkpoint = Path(summary["checkpoint"])
    meta = json.loads((checkpoint / "meta.json").read_text())
    assert meta["step"] == 2 and meta["metadata"]["sharding"] == "full"
    assert (checkpoint / "dcp" / ".metadata").is_file()

    bad = CliRunner().invoke(app, [*args, "--workers", "3", "--sequence-parallel", "2"])
    assert bad.exit_code == 2 and "multiple of sequence_parallel" in bad.stderr
    bad = CliRunner().invoke(app, [*args, "--sharding", "zero3"])
    assert bad.exit_code == 2 and "none, zero2 or full" in bad.stderr

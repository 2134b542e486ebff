"""A planned run as the DiT trainer sees it, and which image checkpoint a video run starts from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.dit.buckets import Bucket, micro_batch_sizes
from training.scaling.plan import SweepConfig, plan_sweep
from training.scaling.run import (
    FinishedRun,
    SweepRunError,
    best_checkpoints,
    check_device,
    run_key,
    run_train_config,
    video_starts,
)


@pytest.mark.parametrize(
    ("family", "stage", "bucket", "batch"),
    [("image", "image_256", Bucket(64, "1:1", 1), 8), ("video", "video_low_short", Bucket(64, "1:1", 9), 4)],
)
def test_run_config_trains_the_planned_steps_batch_and_tokens(family, stage, bucket, batch):
    config = SweepConfig.preset("tiny")
    run = next(r for r in plan_sweep(family, [1e11], config).runs if r.size == "w96-1x2")
    train = run_train_config(run, config)
    spec = train.stage(stage)
    assert spec.steps == run.steps and spec.lr == config.lr
    assert spec.resolutions == (64,) and spec.image_ratio == (1.0 if family == "image" else 0.0)
    assert bucket.tokens == run.video_tokens  # the trainer's bucket holds the tokens the plan counts
    assert micro_batch_sizes([bucket], train.tokens_per_micro_batch, train.max_micro_batch) == {bucket: batch}
    assert train.text_max_length == config.text_tokens
    assert (train.dit_overrides["hidden_size"], train.dit_overrides["depth_single"]) == (96, 2)
    assert train.checkpoint_every == run.steps and train.sample_every == 0
    assert not train.use_gpu and run_train_config(run, config, device="cuda").use_gpu


def test_run_key_changes_with_the_plan():
    config = SweepConfig.preset("tiny")
    one = plan_sweep("image", [1e11], config).runs[0]
    other = plan_sweep("image", [1e11], config.replace(image_batch_size=16)).runs[0]
    assert run_key(one) != run_key(other) and one.size in run_key(one)


def _finished(size: str, budget: float, loss: float, checkpoint: Path | None) -> FinishedRun:
    return FinishedRun("image", size, budget, loss, f"{size}-{budget}", checkpoint)


def test_best_checkpoint_is_the_lowest_loss_with_ties_to_the_larger_budget(tmp_path: Path):
    dirs = {name: tmp_path / name for name in ("a", "b", "c", "d")}
    for path in dirs.values():
        path.mkdir()
    runs = [
        _finished("w32-1x1", 1e10, 2.0, dirs["a"]),
        _finished("w32-1x1", 3e10, 1.5, dirs["b"]),
        _finished("w32-1x1", 1e11, 1.4, tmp_path / "deleted"),  # lowest, but its checkpoint is gone
        _finished("w64-1x1", 1e10, 1.7, dirs["c"]),
        _finished("w64-1x1", 3e10, 1.7, dirs["d"]),
    ]
    best = best_checkpoints(runs)
    assert best["w32-1x1"].checkpoint == dirs["b"]
    assert best["w64-1x1"].checkpoint == dirs["d"]


def test_video_plan_needs_an_image_checkpoint_per_size(tmp_path: Path):
    plan = plan_sweep("video", [1e11], SweepConfig.preset("tiny"), ["w32-1x1", "w64-1x1"])
    (tmp_path / "ckpt").mkdir()
    with pytest.raises(SweepRunError, match=r"no finished image run .* for w64-1x1: run `videofoundry"):
        video_starts(plan, [_finished("w32-1x1", 1e10, 2.0, tmp_path / "ckpt")])
    image = [
        _finished("w32-1x1", 1e10, 2.0, tmp_path / "ckpt"),
        _finished("w64-1x1", 1e10, 2.0, tmp_path),
        _finished("w96-1x2", 1e10, 2.0, tmp_path),  # not in the video plan
    ]
    assert video_starts(plan, image) == {"w32-1x1": tmp_path / "ckpt", "w64-1x1": tmp_path}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_is_refused_without_a_gpu():
    with pytest.raises(SweepRunError, match="no CUDA device"):
        check_device("cuda")
    check_device("cpu")

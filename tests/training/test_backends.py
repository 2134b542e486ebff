"""The shared trainer pieces: DDP on 2 gloo ranks, backend choice, DeepSpeed engine configs, typed
results, launch settings, and checkpoints that refuse a backend they were not written by."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from training.backends import (
    Backend,
    DDPBackend,
    OptimizerSettings,
    make_backend,
    refuse_partitioned_weights,
    warmup_factor,
)
from training.checkpointing import (
    CheckpointError,
    CheckpointManager,
    load_training_checkpoint,
    save_training_checkpoint,
)
from training.deepspeed_config import training_config, zero_config
from training.ema import EMA
from training.launch import LaunchSettings
from training.parallel.launch import spawn_local
from training.results import TrainResult

REPO = Path(__file__).resolve().parents[2]
OPTIMIZER = OptimizerSettings(lr=0.1, betas=(0.9, 0.999), weight_decay=0.1, grad_clip=0.0)


class _Heads(nn.Module):
    """Three linear heads: `a` used by every rank, `b` by rank 0 only, `never` by none."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.never = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(4, 3)


def _batch(rank: int) -> torch.Tensor:
    return torch.randn(5, 4, generator=torch.Generator().manual_seed(10 + rank))


def _rank_loss(model: _Heads, rank: int) -> torch.Tensor:
    x = _batch(rank)
    loss = model.a(x).pow(2).mean()
    return loss + model.b(x).pow(2).mean() if rank == 0 else loss


def _ddp_worker(rank: int, world: int, out_dir: str) -> None:
    backend = make_backend(None, "fp32")
    assert isinstance(backend, DDPBackend) and backend.world_size == world
    torch.manual_seed(rank)  # different local init: wrap() must broadcast rank 0's weights
    model = _Heads()
    if rank:
        with torch.no_grad():
            model.a.weight.add_(1.0)
    stepped = backend.wrap("heads", model, OPTIMIZER)
    norm = stepped.step(_rank_loss(model, rank))
    means = backend.mean({"rank": float(rank)})
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({"norm": norm, "means": means, "state": state}, Path(out_dir) / f"rank{rank}.pt")


def test_ddp_step_equals_one_process_stepping_on_both_batches(tmp_path: Path) -> None:
    spawn_local(_ddp_worker, 2, args=(str(tmp_path),), timeout_s=60)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]

    model = _Heads()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    stepped = Backend(device="cpu", precision="fp32").wrap("heads", model, OPTIMIZER)
    norm = stepped.step((_rank_loss(model, 0) + _rank_loss(model, 1)) / 2)  # mean over the union
    reference = model.state_dict()

    for result in ranks:
        assert result["norm"] == pytest.approx(norm, rel=1e-6)
        assert result["means"] == {"rank": 0.5}
        for key, tensor in reference.items():
            torch.testing.assert_close(result["state"][key], tensor, rtol=1e-6, atol=1e-7)
    assert not torch.equal(reference["b.weight"], initial["b.weight"])  # used on one rank: stepped
    # Used on no rank: AdamW never sees it, so weight decay does not move it either.
    assert torch.equal(ranks[0]["state"]["never.weight"], initial["never.weight"])


def test_make_backend_without_a_process_group_is_one_process() -> None:
    backend = make_backend(None, "auto")
    assert type(backend) is Backend and backend.world_size == 1 and backend.precision in ("fp32", "bf16")


def test_trainers_that_keep_an_ema_refuse_partitioned_weights() -> None:
    class Partitioned(Backend):
        partitions_parameters = True

    class Gathering(Partitioned):
        gathers_full_weights = True

    refuse_partitioned_weights(Backend(precision="fp32"), "DiT")  # whole weights: fine
    refuse_partitioned_weights(Gathering(precision="fp32"), "DiT")  # FSDP2: gathered for exports
    with pytest.raises(ValueError, match="DiT trainer keeps an EMA.*sharding 'full'"):
        refuse_partitioned_weights(Partitioned(precision="fp32"), "DiT")


def test_make_backend_refuses_two_sharding_schemes_and_sp_without_ranks() -> None:
    with pytest.raises(ValueError, match="set one of them"):
        make_backend(2, "fp32", sharding="full")
    with pytest.raises(ValueError, match="sharding must be"):
        make_backend(None, "fp32", sharding="zero3")
    with pytest.raises(ValueError, match="needs that many workers"):
        make_backend(None, "fp32", sequence_parallel=2)


def test_warmup_is_linear_then_constant() -> None:
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def test_cosine_decay_runs_from_the_peak_to_its_final_fraction_and_holds() -> None:
    factor = OptimizerSettings(
        1e-3, (0.9, 0.99), 0.0, 1.0, 2, decay_steps=10, final_lr_fraction=0.1
    ).lr_lambda()
    assert [factor(s) for s in (0, 1)] == [0.5, pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 10)))]
    assert (
        factor(5) == pytest.approx(0.55)
        and factor(10) == pytest.approx(0.1)
        and factor(50) == pytest.approx(0.1)
    )
    constant = OptimizerSettings(1e-3, (0.9, 0.99), 0.0, 1.0, 2).lr_lambda()
    assert [constant(s) for s in (0, 1, 500)] == [0.5, 1.0, 1.0]


@pytest.mark.parametrize("stage", [2, 3])
def test_generated_deepspeed_config_matches_infra_json(stage: int) -> None:
    infra = json.loads((REPO / "infra" / "deepspeed" / f"zero{stage}.json").read_text())
    assert zero_config(stage) == infra
    cpu = training_config(
        stage, 1e-4, (0.9, 0.999), 0.0, 1.0, bf16=False, torch_adam=True, overlap_comm=False
    )
    assert cpu["optimizer"]["params"]["torch_adam"] is True and cpu["bf16"] == {"enabled": False}
    assert {k: v for k, v in cpu.items() if k != "optimizer"} == zero_config(
        stage, bf16=False, overlap_comm=False, steps_per_print=1 << 30
    )
    fp16 = training_config(stage, 1e-4, (0.9, 0.999), 0.0, 1.0, bf16=False, fp16=True, torch_adam=False)
    assert fp16["fp16"] == {"enabled": True, "loss_scale": 0}
    with pytest.raises(ValueError, match="one of bf16 and fp16"):
        training_config(stage, 1e-4, (0.9, 0.999), 0.0, 1.0, bf16=True, fp16=True, torch_adam=False)


def test_train_result_survives_the_trip_through_reported_metrics(tmp_path: Path) -> None:
    result = TrainResult(
        name="image_256",
        steps_done=6,
        resumed_from=2,
        checkpoint=tmp_path / "step_000000006",
        run_id="abc",
        world_size=2,
        samples_per_second=3.5,
        final_loss=0.25,
        last_loss=0.2,
        data_version="records:123",
        evals=({"step": 0.0, "psnr_image": 20.0},),
        model_versions=("3", "4"),
        bucket_losses={"r32_1x1_f1_32x32": 0.3},
    )
    reported = json.loads(json.dumps(result.to_metrics()))  # what Ray stores is plain data
    reported["training_iteration"] = 1  # keys Ray may add are ignored
    assert TrainResult.from_metrics(reported) == result and result.model_version == "4"
    empty = TrainResult.from_metrics({"name": "vae", "steps_done": 0, "resumed_from": 0, "checkpoint": None})
    assert empty.checkpoint is None and math.isnan(empty.final_loss) and empty.model_version is None
    with pytest.raises(ValueError, match="lack"):
        TrainResult.from_metrics({"steps_done": 1})


def test_launch_settings_pick_ray_for_several_workers_or_zero() -> None:
    assert not LaunchSettings().uses_ray
    assert LaunchSettings(workers=2).uses_ray and LaunchSettings(zero_stage=2).uses_ray
    assert not LaunchSettings(mode="local", zero_stage=2).uses_ray  # a torchrun-started rank
    with pytest.raises(ValueError, match="mode 'local' runs one process"):
        LaunchSettings(mode="local", workers=2)


def test_a_checkpoint_refuses_a_backend_that_keeps_optimizer_state_elsewhere(tmp_path: Path) -> None:
    class Sharded(Backend):
        sharded_state_dir = "deepspeed"

    model = nn.Linear(4, 3)
    ema = EMA(model, 0.9)
    backend = Backend(device="cpu", precision="fp32")
    stepped = backend.wrap("model", model, OPTIMIZER)
    stepped.step(model(torch.ones(2, 4)).pow(2).mean())
    ema.update(model)
    manager = CheckpointManager(tmp_path)
    save_training_checkpoint(manager, backend, 1, {"model": stepped}, ema, {"step": 1}, {"kind": "test"})

    fresh = nn.Linear(4, 3)
    fresh_ema = EMA(fresh, 0.9)
    restored = load_training_checkpoint(
        manager, backend, {"model": backend.wrap("model", fresh, OPTIMIZER)}, fresh_ema
    )
    assert restored is not None and restored.step == 1
    assert torch.equal(fresh.weight, model.weight) and fresh_ema.updates == 1
    with pytest.raises(CheckpointError, match="resume with the backend"):
        sharded = Sharded(device="cpu", precision="fp32")
        load_training_checkpoint(
            manager, sharded, {"model": sharded.wrap("model", nn.Linear(4, 3), OPTIMIZER)}, fresh_ema
        )

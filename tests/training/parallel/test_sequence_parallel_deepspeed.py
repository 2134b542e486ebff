"""DeepSpeed ZeRO-3 over a sequence-parallel tiny DiT on 2 gloo ranks (CPU, fp32).

The wiring under test: `parallelize_dit` first, then `training.deepspeed_backend.DeepSpeedBackend`
with the ordinary config (no sequence-parallel mpu). DeepSpeed averages gradients over all ranks,
which by the convention of training.parallel.collectives is the single-device gradient: the
global gradient norm DeepSpeed reports and the weights after one AdamW step must equal a plain
single-process torch step. (ZeRO-2 goes through the same gradient averaging; one stage keeps the
test near a minute on a shared CPU.)
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from tests.model.builders import dit_inputs, randomize_
from tests.training.parallel.ranks import run_ranks
from training.parallel import parallelize_dit

WORLD = 2
LR, BETAS, WEIGHT_DECAY = 1e-3, (0.9, 0.999), 0.01
GRID = (3, 2, 6)  # 9 video tokens over 2 ranks: 5 + (4 + 1 padding)


def _model() -> HunyuanDiT:
    torch.manual_seed(0)
    return randomize_(HunyuanDiT(DiTConfig.preset("tiny")), seed=1, std=0.1)  # type: ignore[return-value]


def _loss(model: torch.nn.Module) -> torch.Tensor:
    cfg = DiTConfig.preset("tiny")
    inputs = dit_inputs(cfg, batch=2, grid=GRID, text_len=5, seed=5)
    target = torch.randn(2, cfg.out_channels, *GRID, generator=torch.Generator().manual_seed(9))
    return torch.nn.functional.mse_loss(model(*inputs), target)


def _reference_step() -> tuple[float, dict[str, torch.Tensor]]:
    model = _model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)
    _loss(model).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    optimizer.step()
    return float(norm), {k: v.detach().clone() for k, v in model.state_dict().items()}


def _worker(rank: int, world: int) -> dict[str, Any]:
    import deepspeed

    from training.backends import OptimizerSettings
    from training.deepspeed_backend import DeepSpeedBackend

    backend = DeepSpeedBackend(zero_stage=3, precision="fp32")
    model = parallelize_dit(_model())
    stepped = backend.wrap("dit", model, OptimizerSettings(LR, BETAS, WEIGHT_DECAY, grad_clip=0.0))
    norm = stepped.step(_loss(stepped.engine))
    module = stepped.engine.module
    with deepspeed.zero.GatheredParameters(list(module.parameters())):  # ZeRO-3: whole weights
        state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    results = {"norm": norm, "state": state}
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, WORLD, tmp_path_factory.mktemp("sp_deepspeed"), timeout_s=120)


@pytest.mark.slow
def test_zero3_step_under_sequence_parallel_equals_single_process_step(results: list[dict[str, Any]]) -> None:
    ref_norm, ref_state = _reference_step()
    initial = _model().state_dict()
    assert (
        max((ref_state[k] - initial[k]).abs().max().item() for k in ref_state) > 1e-4
    )  # the step moved weights
    for per_rank in results:
        # The gradient norm is sensitive to the averaging (a sum over the group would double it).
        assert per_rank["norm"] == pytest.approx(ref_norm, rel=1e-4)
        state = per_rank["state"]
        assert set(state) == set(ref_state)
        worst = max((state[k] - ref_state[k]).abs().max().item() for k in ref_state)
        assert worst < 1e-5, worst

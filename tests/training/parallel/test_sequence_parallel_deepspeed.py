"""DeepSpeed ZeRO-3 over a sequence-parallel tiny DiT on 2 gloo ranks (CPU, fp32).

The wiring under test: `parallelize_dit` first, then `training.deepspeed_backend.DeepSpeedBackend`
with the ordinary config (no sequence-parallel mpu). DeepSpeed averages gradients over all ranks,
which by the convention of training.parallel.collectives is the single-device gradient, and then
steps AdamW on its partitions. Checked in two well-conditioned halves (ZeRO-2 goes through the same
gradient averaging; one stage keeps the test near a minute on a shared CPU):
- the gradient: DeepSpeed's global norm and its AdamW first moment (0.1 × the averaged gradient,
  gathered from the partitions) equal a plain single-process torch step's, to fp32 rounding;
- the step: the gathered weights equal torch's AdamW applied to DeepSpeed's own gradient.
Weights are not compared with the single-process step directly: AdamW's first step is
lr·g/(|g| + eps), so where |g| ~ eps it multiplies a gradient's rounding error by lr/eps = 1e5. Here
a weight with g ≈ −1.5e-9 moves 1.2e-5 apart between fp32 and fp64 single-process steps alone, and
over 8 model/input seeds and 1-2 threads the direct gap was 3.5e-6 to 1.7e-5 (the gradients agreed
to 5e-7 of their scale each time).
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
# Largest first-moment difference as a fraction of the largest first moment: 1.9e-7 to 5.1e-7 over
# 8 model/input seeds and 1-2 threads (fp32 rounding of another reduction order); a sum over the
# group instead of a mean would give 1.
MOMENT_TOLERANCE = 1e-5
# Weights vs torch's AdamW on DeepSpeed's own gradient: 1.5e-8 to 3e-8 over the same 8 runs (one
# float32 ulp of weights below 0.5); a lost or doubled step moves a weight by about LR.
STEP_TOLERANCE = 1e-6


def _model() -> HunyuanDiT:
    torch.manual_seed(0)
    return randomize_(HunyuanDiT(DiTConfig.preset("tiny")), seed=1, std=0.1)  # type: ignore[return-value]


def _loss(model: torch.nn.Module) -> torch.Tensor:
    cfg = DiTConfig.preset("tiny")
    inputs = dit_inputs(cfg, batch=2, grid=GRID, text_len=5, seed=5)
    target = torch.randn(2, cfg.out_channels, *GRID, generator=torch.Generator().manual_seed(9))
    return torch.nn.functional.mse_loss(model(*inputs), target)


def _adamw(model: torch.nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _reference_step() -> tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(gradient norm, weights, first moments) of one single-process AdamW step."""
    model = _model()
    optimizer = _adamw(model)
    _loss(model).backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
    optimizer.step()
    moments = {name: optimizer.state[p]["exp_avg"].clone() for name, p in model.named_parameters()}
    return float(norm), _state(model), moments


def _step_with_moments(moments: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights after one torch AdamW step from the initial model with gradient moments / (1 − β1)."""
    model = _model()
    optimizer = _adamw(model)
    for name, param in model.named_parameters():
        param.grad = moments[name] / (1.0 - BETAS[0])
    optimizer.step()
    return _state(model)


def _worker(rank: int, world: int) -> dict[str, Any]:
    import deepspeed
    from deepspeed.utils import safe_get_full_optimizer_state

    from training.backends import OptimizerSettings
    from training.deepspeed_backend import DeepSpeedBackend

    backend = DeepSpeedBackend(zero_stage=3, precision="fp32")
    model = parallelize_dit(_model())
    stepped = backend.wrap("dit", model, OptimizerSettings(LR, BETAS, WEIGHT_DECAY, grad_clip=0.0))
    norm = stepped.step(_loss(stepped.engine))
    module = stepped.engine.module
    moments = {  # collective: every rank gathers every parameter's partitions, in the same order
        name: safe_get_full_optimizer_state(param, "exp_avg").reshape(param.ds_shape).clone()
        for name, param in module.named_parameters()
    }
    with deepspeed.zero.GatheredParameters(list(module.parameters())):  # ZeRO-3: whole weights
        state = _state(module)
    return {"norm": norm, "state": state, "moments": moments}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, WORLD, tmp_path_factory.mktemp("sp_deepspeed"), timeout_s=120)


@pytest.mark.slow
def test_zero3_step_under_sequence_parallel_equals_single_process_step(results: list[dict[str, Any]]) -> None:
    ref_norm, ref_state, ref_moments = _reference_step()
    initial = _model().state_dict()
    assert max((ref_state[k] - initial[k]).abs().max().item() for k in ref_state) > 1e-4  # it moved
    scale = max(m.abs().max().item() for m in ref_moments.values())
    for per_rank in results:
        # The gradient norm is sensitive to the averaging (a sum over the group would double it).
        assert per_rank["norm"] == pytest.approx(ref_norm, rel=1e-4)
        moments, state = per_rank["moments"], per_rank["state"]
        assert set(moments) == set(ref_moments) and set(state) == set(ref_state)
        gradient_gap = max((moments[k] - ref_moments[k]).abs().max().item() for k in ref_moments)
        assert gradient_gap < MOMENT_TOLERANCE * scale, (gradient_gap, scale)
        expected = _step_with_moments(moments)
        step_gap = max((state[k] - expected[k]).abs().max().item() for k in expected)
        assert step_gap < STEP_TOLERANCE, step_gap

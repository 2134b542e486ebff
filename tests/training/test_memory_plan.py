"""The memory planner against measured tensor bytes of small DiTs on CPU, and its 13 B plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.autograd.graph import saved_tensors_hooks

from model.dit import DoubleStreamBlock, HunyuanDiT, SingleStreamBlock
from model.dit_config import DiTConfig
from model.flops import dit_param_count
from tests.model.builders import dit_inputs
from training.memory_plan import GB, PlanError, activation_elements, estimate, plan_training

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [
    ("tiny", {}, (3, 8, 8), 8),
    ("small", {}, (2, 8, 16), 16),
    ("tiny", {"hidden_size": 128, "num_heads": 4, "depth_double": 2, "depth_single": 3, "rope_dims": (8, 12, 12)}, (5, 8, 8), 12),
]  # fmt: skip


def _measure(model: HunyuanDiT, inputs: tuple[torch.Tensor, ...]) -> tuple[int, int, int]:
    """(all saved bytes, bytes the blocks' inputs hold, largest single block's saved bytes) of one forward.

    Unique storages saved for backward by autograd, parameters and the model's inputs excluded:
    the exact bytes a training forward keeps alive for its backward.
    """
    skip = {p.untyped_storage().data_ptr() for p in model.parameters()}
    skip |= {a.untyped_storage().data_ptr() for a in inputs}
    saved: dict[int, tuple[int, str | None]] = {}
    block_inputs: dict[int, int] = {}
    current: list[str | None] = [None]
    blocks = [m for m in model.modules() if isinstance(m, DoubleStreamBlock | SingleStreamBlock)]

    def enter(module: torch.nn.Module, args: tuple) -> None:
        current[0] = str(id(module))
        for a in args:
            if isinstance(a, torch.Tensor) and a.requires_grad:
                block_inputs[a.untyped_storage().data_ptr()] = a.untyped_storage().nbytes()

    def leave(module: torch.nn.Module, args: tuple, out: object) -> None:
        current[0] = None

    handles = [b.register_forward_pre_hook(enter) for b in blocks] + [
        b.register_forward_hook(leave) for b in blocks
    ]

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            saved.setdefault(storage.data_ptr(), (storage.nbytes(), current[0]))
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        model(*inputs)
    for h in handles:
        h.remove()
    per_block: dict[str, int] = {}
    for nbytes, owner in saved.values():
        if owner is not None:
            per_block[owner] = per_block.get(owner, 0) + nbytes
    # What checkpointed blocks keep: their inputs, plus whatever the layers outside them save.
    kept = {p: n for p, (n, owner) in saved.items() if owner is None} | block_inputs
    return sum(n for n, _ in saved.values()), sum(kept.values()), max(per_block.values())


@pytest.mark.parametrize(("preset", "overrides", "grid", "text"), CONFIGS)
def test_activation_model_matches_saved_tensor_bytes(preset, overrides, grid, text):
    torch.manual_seed(0)
    config = DiTConfig.preset(preset, **overrides)
    model = HunyuanDiT(config)
    inputs = dit_inputs(config, batch=1, grid=grid, text_len=text)
    video = grid[0] * grid[1] * grid[2] // 4
    full, held_by_checkpoints, largest_block = _measure(model, inputs)

    planned = activation_elements(config, video, text).total * 4  # fp32 on CPU
    assert planned == pytest.approx(full, rel=0.15)
    # Per-block checkpointing: the blocks' inputs and everything outside the blocks stay; one block
    # at a time is recomputed in backward.
    planned_ckpt = activation_elements(config, video, text, checkpointing="full").total * 4
    assert planned_ckpt == pytest.approx(held_by_checkpoints + largest_block, rel=0.15)
    assert planned_ckpt < planned


def test_state_bytes_match_a_real_adamw_step():
    torch.manual_seed(0)
    config = DiTConfig.preset("tiny")
    model = HunyuanDiT(config)
    optimizer = torch.optim.AdamW(model.parameters())
    out = model(*dit_inputs(config, batch=1, grid=(1, 4, 4), text_len=4))
    out.square().mean().backward()
    optimizer.step()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    moments = sum(
        v.numel() * v.element_size() for s in optimizer.state.values() for k, v in s.items() if k != "step"
    )
    plan = estimate(config, 1, "none", 1, "none", 4, 4, compute_bytes=4)
    assert (plan.weights, plan.gradients, plan.optimizer) == (weights, grads, moments)


def test_sharding_divides_state_by_gpus():
    config = DiTConfig.preset("hunyuan-13b")
    p = dit_param_count(config)
    none = estimate(config, 8, "none", 1, "full", 1000, 256)
    full = estimate(config, 8, "full", 1, "full", 1000, 256)
    assert none.optimizer == 8 * p and full.optimizer == p
    assert full.ema == pytest.approx(none.ema / 8)
    assert none.activations == full.activations


def test_13b_plan_fits_eight_80gb_gpus():
    config = DiTConfig.preset("hunyuan-13b")
    plan = plan_training(config, gpus=8, gpu_memory_gb=80, video_tokens=67_320, text_tokens=256)
    best = plan.recommended
    assert best is not None and best.total <= 72 * GB
    assert best.sharding == "full"  # 13 B of fp32 Adam state cannot be replicated on 80 GB
    assert all(not o.fits for o in plan.options if o.sharding == "none")
    # One GPU cannot hold it at all.
    assert plan_training(config, gpus=1, gpu_memory_gb=80, video_tokens=67_320).recommended is None


def test_sequence_parallel_degrees_divide_gpus_and_heads():
    plan = plan_training(DiTConfig.preset("hunyuan-13b"), gpus=8, gpu_memory_gb=80, video_tokens=4096)
    assert sorted({o.sequence_parallel for o in plan.options}) == [1, 2, 4, 8]
    with pytest.raises(PlanError):
        plan_training(DiTConfig.preset("tiny"), gpus=0, gpu_memory_gb=80, video_tokens=10)


def test_plain_step_matches_the_recorded_h100_peaks():
    """bench-4x8 at 14,310 + 256 tokens, bf16 autocast, plain backend (no EMA in that benchmark)."""
    rows = json.loads((REPO / "benchmarks" / "results" / "dit_train_gpu_h100.json").read_text())["rows"]
    peaks = {r["name"]: r["peak_gib"] * 2**30 for r in rows if "peak_gib" in r}
    config = DiTConfig.preset("bench-4x8")
    for name, checkpointing in (("plain_pytorch", "none"), ("plain_pytorch_ac", "full")):
        plan = estimate(config, 1, "none", 1, checkpointing, 14_310, 256)
        assert plan.total - plan.ema == pytest.approx(peaks[name], rel=0.15), name

"""Activation-checkpointing policies: equal gradients, and what backward reruns."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from model.dit import HunyuanDiT
from model.recompute import ATTENTION_OPS, checkpoint_kwargs
from tests.model.builders import dit_inputs, rel_err


class _CountOps(TorchDispatchMode):
    """Counts attention-kernel and matmul calls dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = 0
        self.matmuls = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in ATTENTION_OPS:
            self.attention += 1
        elif func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default):
            self.matmuls += 1
        return func(*args, **(kwargs or {}))


def _grads_and_counts(model: HunyuanDiT, checkpointing: bool, policy: str) -> tuple[torch.Tensor, _CountOps]:
    model.gradient_checkpointing, model.checkpoint_policy = checkpointing, policy
    model.zero_grad()
    with _CountOps() as counts:
        model(*dit_inputs(model.config)).pow(2).mean().backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return grads, counts


def test_save_attention_reruns_the_linears_but_not_attention(tiny_dit: HunyuanDiT) -> None:
    plain, none = _grads_and_counts(tiny_dit, False, "full")
    full_grads, full = _grads_and_counts(tiny_dit, True, "full")
    selective_grads, selective = _grads_and_counts(tiny_dit, True, "save-attention")
    assert none.attention > 0, "the tiny DiT's attention must run through an aten SDPA kernel on CPU"
    assert rel_err(full_grads, plain) < 1e-5
    assert rel_err(selective_grads, plain) < 1e-5
    blocks_attention = full.attention - none.attention  # attention calls rerun by full recompute
    assert blocks_attention > 0
    assert selective.attention == none.attention  # none rerun
    assert selective.matmuls > none.matmuls  # the projections and MLPs are rerun
    assert selective.matmuls == full.matmuls


def test_unknown_policy_is_named() -> None:
    with pytest.raises(ValueError, match="save-everything"):
        checkpoint_kwargs("save-everything")

"""Builders shared by the model tests: tiny random inputs, error metric, weight randomisation."""

from __future__ import annotations

import torch

from model.dit_config import DiTConfig


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| in float64 (of the values: tensors that require grad are detached)."""
    a, b = a.detach(), b.detach()
    return float((a.double() - b.double()).norm() / b.double().norm())


def dit_inputs(
    cfg: DiTConfig, batch: int = 2, grid: tuple[int, int, int] = (3, 6, 10), text_len: int = 7, seed: int = 0
):
    """Random DiT inputs; sample 1 (if any) has only 4 real text tokens (right padding)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.in_channels, *grid, generator=gen)
    t = torch.linspace(900.0, 20.0, batch)
    states = torch.randn(batch, text_len, cfg.text_states_dim, generator=gen)
    mask = torch.ones(batch, text_len, dtype=torch.bool)
    if batch > 1:
        mask[1, 4:] = False
    pooled = torch.randn(batch, cfg.text_pooled_dim, generator=gen)
    guidance = torch.linspace(6000.0, 3500.0, batch)
    return x, t, states, mask, pooled, guidance


def randomize_(module: torch.nn.Module, seed: int = 0, std: float = 0.15) -> torch.nn.Module:
    """Overwrite every parameter (norm scales too) with N(0, std) so no weight is trivially 0 or 1."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return module

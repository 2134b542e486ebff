"""`model.flops` against PyTorch's own FLOP counter and parameter count on real tiny DiTs.

The counter sees every matrix product the model runs (aten mm/addmm/bmm/convolution and their
backward); the `reference` attention backend is used because the counter has no formula for the CPU
SDPA kernel, and its einsums are the same QKᵀ and A·V products. Measured: forward and
forward+backward agree exactly (relative error 0), and forward+backward / forward is 2.96–2.99.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.flops import dit_flops, dit_param_count, video_token_count

CASES = [
    pytest.param({}, id="tiny"),
    pytest.param({"image_condition": "token_replace"}, id="tiny-i2v-token-replace"),
    pytest.param(
        {"image_condition": "latent_concat", "in_channels": 33, "guidance_embed": False, "mlp_ratio": 3.0},
        id="tiny-latent-concat-no-guidance",
    ),
    pytest.param({"depth_double": 2, "depth_single": 3, "depth_refiner": 2}, id="tiny-deeper"),
]


def _counted(model: HunyuanDiT, grid: tuple[int, int, int], text_len: int, batch: int) -> tuple[int, int]:
    cfg = model.config
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.out_channels, *grid, generator=gen)
    if cfg.image_condition is None:
        x = torch.randn(batch, cfg.in_channels, *grid, generator=gen)
    first = torch.randn(batch, cfg.out_channels, 1, *grid[1:], generator=gen) if cfg.image_condition else None
    inputs = dict(
        x=x,
        t=torch.linspace(900.0, 100.0, batch),
        text_states=torch.randn(batch, text_len, cfg.text_states_dim, generator=gen),
        text_mask=torch.ones(batch, text_len, dtype=torch.bool),
        text_pooled=torch.randn(batch, cfg.text_pooled_dim, generator=gen),
        guidance=torch.full((batch,), 6000.0) if cfg.guidance_embed else None,
        first_frame_clean=first,
    )
    with FlopCounterMode(display=False) as forward_only:
        model(**inputs)
    with FlopCounterMode(display=False) as both:
        model(**inputs).square().mean().backward()
    return forward_only.get_total_flops(), both.get_total_flops()


@pytest.mark.parametrize("overrides", CASES)
def test_flops_equal_the_torch_flop_counter(overrides):
    cfg = DiTConfig.preset("tiny", attention_backend="reference", **overrides)
    torch.manual_seed(0)
    model = HunyuanDiT(cfg)
    grid, text_len, batch = (2, 8, 12), 7, 2
    counted_forward, counted_training = _counted(model, grid, text_len, batch)

    ours = dit_flops(cfg, video_token_count(cfg, grid), text_len, batch)

    assert ours.forward == counted_forward
    assert ours.training == counted_training
    # The backward is ~2× the forward: only the data-input layers skip their input gradient.
    assert 2.9 < ours.training / ours.forward <= 3.0


def test_attention_grows_quadratically_with_tokens():
    cfg = DiTConfig.preset("tiny")
    layers = cfg.depth_double + cfg.depth_single
    short, long = dit_flops(cfg, 100, 10), dit_flops(cfg, 200, 10)
    linear_part = long.forward - short.forward
    # Doubling V adds the per-token linears once more plus 4·D·((210)² − (110)²) per block.
    attention_extra = 4 * cfg.hidden_size * layers * (210**2 - 110**2)
    assert linear_part > attention_extra > 0
    assert dit_flops(cfg, 100, 10, batch=3).forward == 3 * short.forward


@pytest.mark.parametrize("overrides", CASES)
def test_param_count_equals_the_built_model(overrides):
    cfg = DiTConfig.preset("tiny", **overrides)
    assert dit_param_count(cfg) == sum(p.numel() for p in HunyuanDiT(cfg).parameters())


def test_param_count_of_the_released_model_is_12_8_billion():
    assert dit_param_count(DiTConfig.preset("hunyuan-13b")) == pytest.approx(12.8e9, rel=0.01)


def test_bad_token_counts_are_rejected():
    cfg = DiTConfig.preset("tiny")
    with pytest.raises(ValueError, match="must be >= 1"):
        dit_flops(cfg, 0, 4)
    with pytest.raises(ValueError, match="multiples of the patch"):
        video_token_count(cfg, (1, 7, 8))
    assert video_token_count(cfg, (3, 8, 12)) == 3 * 4 * 6

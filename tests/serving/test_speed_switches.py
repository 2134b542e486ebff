"""The speed and memory switches of ServingConfig through `serving.generate` on tiny-random: off by
default (the output is the dense float32 one), each changes what it should, the metadata says what
ran, bad values are refused, and `fit_memory` picks switches for a GPU memory budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from serving import ServingConfig, generate
from serving.config import DEFAULT_FFN_CHUNK_TOKENS, activation_reserve_gb, fit_memory, largest_video_tokens
from serving.limits import RequestLimits

SIZE = {"height": 64, "width": 64, "frames": 9, "steps": 6, "seed": 2}


def _run(config: ServingConfig):
    return generate("a red kite over the sea", model="tiny-random", config=config, **SIZE)


def _diff(a, b) -> float:
    return float(np.abs(a.frames.astype(int) - b.frames.astype(int)).mean())


def test_switches_are_off_by_default_and_each_changes_only_what_it_should(tiny_config: ServingConfig) -> None:
    assert not tiny_config.fp8 and tiny_config.sta_window is None and tiny_config.step_cache is None
    base = _run(tiny_config)
    assert base.metadata["fp8"] is False and "steps_skipped" not in base.metadata

    exact = _run(tiny_config.replace(step_cache=0.0))  # threshold 0: every step computed
    assert np.array_equal(exact.frames, base.frames) and exact.metadata["steps_skipped"] == 0
    cached = _run(tiny_config.replace(step_cache=0.5))
    assert cached.metadata["steps_skipped"] >= 1
    assert cached.metadata["steps_computed"] + cached.metadata["steps_skipped"] == 6

    wide = _run(tiny_config.replace(sta_tile=(1, 2, 2), sta_window=(3, 9, 9)))  # covers the grid: dense
    assert _diff(wide, base) < 0.5 and wide.metadata["sta_window"] == [3, 9, 9]
    narrow = _run(tiny_config.replace(sta_tile=(1, 2, 2), sta_window=(1, 1, 1)))
    warm = _run(tiny_config.replace(sta_tile=(1, 2, 2), sta_window=(1, 1, 1), sta_dense_steps=3))
    assert _diff(narrow, base) > _diff(warm, base)  # dense first steps bring it closer to dense

    fp8 = _run(tiny_config.replace(fp8=True))
    assert fp8.metadata["fp8"] is True and 0 < _diff(fp8, base) < 8.0

    chunked = _run(tiny_config.replace(ffn_chunk_tokens=7))  # the same maths over token slices
    assert chunked.metadata["ffn_chunk_tokens"] == 7 and _diff(chunked, base) < 0.05


def test_bad_switch_values_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        ServingConfig(sta_window=(2, 3, 3))
    with pytest.raises(ValueError, match="step_cache threshold must be >= 0"):
        ServingConfig(step_cache=-1.0)
    with pytest.raises(ValueError, match="turn compile_blocks off"):
        ServingConfig(block_offload=True, compile_blocks=True)


def test_fit_memory_picks_fp8_then_block_offload_then_refuses() -> None:
    with torch.device("meta"):  # the 13B preset's parameter counts, no memory
        dit = HunyuanDiT(DiTConfig.preset("hunyuan-13b"))
    paper = ServingConfig.preset("paper")
    assert largest_video_tokens(paper.limits, dit.config.patch_size) == 118_800  # 720 × 1280 × 129
    roomy = fit_memory(paper.replace(max_vram_gb=80), dit)  # 23.9 GiB bf16 + 12.4 GiB compiled step
    assert roomy == paper.replace(max_vram_gb=80, vae_tile_preset="balanced")
    fp8 = fit_memory(paper.replace(max_vram_gb=32), dit)  # 11.6 GiB e4m3 + 10.4 GiB chunked step
    assert fp8.fp8 and fp8.ffn_chunk_tokens and not fp8.block_offload and not fp8.compile_blocks
    assert fp8.vae_tile_preset == "low-memory"
    small = fit_memory(paper.replace(max_vram_gb=24), dit)  # 23.6 GiB (+ 10 % slack) > 24: stream
    assert small.fp8 and small.block_offload and small.ffn_chunk_tokens == DEFAULT_FFN_CHUNK_TOKENS
    with pytest.raises(ValueError, match=r"too small for 119,056 tokens.*need 12\.\d GB"):
        fit_memory(paper.replace(max_vram_gb=8), dit)
    smaller = paper.replace(max_vram_gb=8, limits=RequestLimits(max_area=544 * 960, max_frames=33))
    assert fit_memory(smaller, dit).block_offload  # a lower size limit fits the same card


def test_activation_reserve_grows_with_tokens_and_width_per_mode() -> None:
    fixed = activation_reserve_gb(0, 3072, "eager")
    unit_gib = 118_800 * 3072 * 2 / 2**30
    assert activation_reserve_gb(118_800, 3072, "eager") - fixed == pytest.approx(58 * unit_gib)
    assert activation_reserve_gb(237_600, 3072, "compiled") - fixed == pytest.approx(2 * 16 * unit_gib)
    chunked = activation_reserve_gb(118_800, 3072, "chunked", 8192) - fixed
    assert chunked == pytest.approx((12 * 118_800 + 16 * 8192) * 3072 * 2 / 2**30)
    assert chunked < activation_reserve_gb(118_800, 3072, "compiled") - fixed
    with pytest.raises(ValueError, match="mode"):
        activation_reserve_gb(10, 8, "fast")
    with pytest.raises(ValueError, match="compile_blocks"):
        ServingConfig(ffn_chunk_tokens=4096, compile_blocks=True)
    with pytest.raises(ValueError, match="ffn_chunk_tokens"):
        ServingConfig(ffn_chunk_tokens=0)

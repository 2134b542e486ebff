"""The speed and memory switches of ServingConfig through `serving.generate` on tiny-random: off by
default (the output is the dense float32 one), each changes what it should, the metadata says what
ran, bad values are refused, and `fit_memory` picks switches for a GPU memory budget."""

from __future__ import annotations

import numpy as np
import pytest

from serving import ServingConfig, generate
from serving.config import fit_memory

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


def test_bad_switch_values_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        ServingConfig(sta_window=(2, 3, 3))
    with pytest.raises(ValueError, match="step_cache threshold must be >= 0"):
        ServingConfig(step_cache=-1.0)
    with pytest.raises(ValueError, match="turn compile_blocks off"):
        ServingConfig(block_offload=True, compile_blocks=True)


def test_fit_memory_picks_fp8_then_block_offload_then_refuses() -> None:
    params_13b = 12_820_000_000
    paper = ServingConfig.preset("paper")
    roomy = fit_memory(paper.replace(max_vram_gb=80), params_13b)
    assert not roomy.fp8 and not roomy.block_offload  # 23.9 GiB of bf16 weights fit in 80
    fp8_only = fit_memory(paper.replace(max_vram_gb=24), params_13b)  # 11.9 GiB of e4m3 fit in 24 - 6
    assert fp8_only.fp8 and not fp8_only.block_offload and fp8_only.vae_tile_preset == "low-memory"
    small = fit_memory(paper.replace(max_vram_gb=16), params_13b)  # 11.9 > 16 - 6: stream the blocks
    assert small.fp8 and small.block_offload and not small.compile_blocks
    with pytest.raises(ValueError, match="leaves no room for activations"):
        fit_memory(paper.replace(max_vram_gb=6.5), params_13b)

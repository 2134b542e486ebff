"""On a CUDA device: bf16 generation, CPU offload gives the same video, and the same seed repeats."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from serving import ServingConfig, generate

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
SIZE = {"height": 64, "width": 96, "frames": 9, "steps": 4, "seed": 3}


def test_bf16_offload_matches_resident_and_repeats(tmp_path) -> None:
    resident = ServingConfig.preset("paper", device="cuda", cpu_offload=False, cache_dir=str(tmp_path))
    offload = ServingConfig.preset("paper", device="cuda", cpu_offload=True, cache_dir=str(tmp_path))
    a = generate("a kite", model="tiny-random", config=resident, **SIZE)
    b = generate("a kite", model="tiny-random", config=resident, **SIZE)
    c = generate("a kite", model="tiny-random", config=offload, **SIZE)
    assert a.metadata["dtype"] == "bfloat16" and a.metadata["device"].startswith("cuda")
    assert np.array_equal(a.frames, b.frames)
    assert (
        np.abs(a.frames.astype(int) - c.frames.astype(int)).max() <= 2
    )  # same weights, moved between stages

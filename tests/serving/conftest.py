"""Serving test fixtures: one thread for torch (the CI box is small and shared; oversubscribed
intra-op threads made the tiny DiT ~30x slower here; restored after each module so other packages'
tests keep their settings) and the tiny-random serving config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from serving import ServingConfig


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> ServingConfig:
    return ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path_factory.mktemp("serving-cache")))

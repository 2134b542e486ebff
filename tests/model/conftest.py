"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from tests.model.builders import randomize_


@pytest.fixture
def tiny_dit() -> HunyuanDiT:
    torch.manual_seed(0)
    return randomize_(HunyuanDiT(DiTConfig.preset("tiny"))).eval()

"""Text encoders: the deterministic tiny-random encoder, and the offline default (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.text import TextEncoderConfig, build_text_encoder
from tests.model.builders import randomize_, rel_err


def test_tiny_random_is_deterministic_right_padded_and_fits_the_tiny_dit() -> None:
    enc = build_text_encoder("tiny-random")
    states, mask, pooled = enc.encode(["a red fox runs", ""])
    again = build_text_encoder(TextEncoderConfig.preset("tiny-random")).encode(["a red fox runs", ""])
    assert torch.equal(states, again.states) and torch.equal(pooled, again.pooled)
    assert states.shape == (2, 16, 32) and pooled.shape == (2, 16)
    assert mask.sum(1).tolist() == [5, 1]
    assert not states[~mask].any()
    model = randomize_(HunyuanDiT(DiTConfig.preset("tiny"))).eval()
    x = torch.randn(2, 16, 2, 4, 4)
    with torch.no_grad():
        out = model(x, torch.tensor([500.0, 500.0]), states, mask, pooled, torch.tensor([5000.0, 5000.0]))
        alone = model(
            x[:1],
            torch.tensor([500.0]),
            *build_text_encoder(TextEncoderConfig.preset("tiny-random", max_length=40)).encode(
                ["a red fox runs"]
            ),
            torch.tensor([5000.0]),
        )
    assert rel_err(out[:1], alone) < 1e-5  # 16 vs 40 tokens of padding: same video output


def test_unknown_encoder_name_is_rejected() -> None:
    with pytest.raises(
        ValueError, match="unknown TextEncoderConfig preset .t5-xxl.; choose one of tiny-random"
    ):
        build_text_encoder("t5-xxl")


@pytest.mark.slow
def test_offline_default_encoder(tmp_path: Path) -> None:
    config = TextEncoderConfig.preset("offline-default", max_length=32, cache_dir=str(tmp_path))
    enc = build_text_encoder(config)
    states, mask, pooled = enc.encode(["a red fox runs through snow at dusk", "ocean"])
    assert states.shape == (2, 32, 576) and pooled.shape == (2, 384)
    assert enc.crop_start > 20  # the system template is cropped off
    lengths = mask.sum(1).tolist()
    assert lengths[0] > lengths[1] >= 1
    assert torch.allclose(pooled.norm(dim=-1), torch.ones(2), atol=1e-5)
    alone = enc.encode(["ocean"])
    n = lengths[1]
    assert torch.allclose(alone.states[0, :n], states[1, :n], atol=1e-4)
    assert torch.allclose(alone.pooled[0], pooled[1], atol=1e-5)
    assert DiTConfig.preset("small").text_states_dim == enc.states_dim
    assert DiTConfig.preset("small").text_pooled_dim == enc.pooled_dim
    # The second load reads the dequantised cache the first one wrote, and encodes identically.
    assert len(list((tmp_path / "videofoundry" / "gguf").iterdir())) == 1
    again = build_text_encoder(config)
    assert again.crop_start == enc.crop_start
    assert torch.equal(again.encode(["ocean"]).states, alone.states)

"""Step caching and FP8 weights on the tiny DiT: threshold 0 reproduces uncached sampling exactly,
a threshold skips steps and stays close; calibration fits a rescaling from recorded pairs; FP8
weights halve the blocks' bytes and stay within a few percent of float32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.flow import euler_sample
from model.fp8 import FP8Linear, quantize_blocks_fp8
from model.step_cache import StepCache, fit_rescale, read_calibration, write_calibration
from tests.model.builders import dit_inputs, randomize_, rel_err


def _model() -> HunyuanDiT:
    torch.manual_seed(0)
    return randomize_(HunyuanDiT(DiTConfig.preset("tiny")), std=0.05).eval()


def _sample(model: HunyuanDiT, steps: int = 12) -> torch.Tensor:
    x, _, states, mask, pooled, guidance = dit_inputs(model.config, batch=1, grid=(3, 6, 10), text_len=7)

    def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(z, t, states, mask, pooled, guidance)

    if model.step_cache is not None:
        model.step_cache.start(steps)
    with torch.no_grad():
        return euler_sample(velocity, torch.randn(x.shape, generator=torch.Generator().manual_seed(0)), steps)


def test_threshold_zero_is_exact_and_a_threshold_skips_steps_and_stays_close() -> None:
    model = _model()
    baseline = _sample(model)
    model.step_cache = StepCache(threshold=0.0)
    assert torch.equal(_sample(model), baseline)
    assert model.step_cache.stats.computed == 12 and model.step_cache.stats.skipped == 0
    pairs = model.step_cache.stats.pairs
    assert len(pairs) == 11 and all(a >= 0 and b >= 0 for a, b in pairs)

    model.step_cache = StepCache(threshold=0.3)
    cached = _sample(model)
    stats = model.step_cache.stats
    assert stats.skipped >= 3 and stats.computed + stats.skipped == 12
    assert not torch.equal(cached, baseline)
    assert rel_err(cached, baseline) < 0.2


def test_calibration_fits_and_round_trips(tmp_path: Path) -> None:
    model = _model()
    model.step_cache = StepCache(threshold=0.0)
    _sample(model, steps=16)
    rescale = fit_rescale(model.step_cache.stats.pairs, degree=2)
    path = write_calibration(tmp_path / "cache.json", rescale, {"model": "tiny"})
    assert read_calibration(path) == rescale
    (tmp_path / "bad.json").write_text('{"rescale": [1]}')
    with pytest.raises(ValueError, match="bad.json: not a step-cache calibration"):
        read_calibration(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot fit a degree-4"):
        fit_rescale([(0.1, 0.2)] * 3)


def test_fp8_weights_halve_block_bytes_and_stay_close() -> None:
    model = _model()
    x, t, states, mask, pooled, guidance = dit_inputs(model.config, batch=2, grid=(3, 6, 10), text_len=7)
    with torch.no_grad():
        reference = model(x, t, states, mask, pooled, guidance)
    before = sum(p.numel() * p.element_size() for b in model.double_blocks for p in b.parameters())
    replaced = quantize_blocks_fp8(model)
    after = sum(
        t.numel() * t.element_size() for b in model.double_blocks for t in [*b.parameters(), *b.buffers()]
    )
    assert replaced > 0 and isinstance(model.single_blocks[0].linear2, FP8Linear)
    assert after < 0.4 * before  # e4m3 is a quarter of float32, plus scales and biases
    with torch.no_grad():
        quantized = model(x, t, states, mask, pooled, guidance)
    assert 0 < rel_err(quantized, reference) < 0.05


def test_forward_split_equals_forward_on_the_concatenation() -> None:
    torch.manual_seed(0)
    layer = FP8Linear(torch.nn.Linear(48, 32))
    a, b = torch.randn(5, 16), torch.randn(5, 32)
    assert torch.allclose(layer.forward_split([a, b]), layer(torch.cat([a, b], -1)), atol=1e-5)
    with pytest.raises(ValueError, match="do not fill in_features 48"):
        layer.forward_split([a])


def test_block_swap_streams_every_block_at_inference_and_keeps_the_output() -> None:
    """Serving's block offload: every block's weights stay on the host between uses."""
    from model.block_swap import BlockSwap

    model = _model()
    x, t, states, mask, pooled, guidance = dit_inputs(model.config, batch=1, grid=(3, 6, 10), text_len=7)
    with pytest.raises(ValueError, match="frozen weights only, and block 0 keeps"):
        BlockSwap(model, "cpu")  # trainable weights would all stay on the device: nothing to stream
    model.requires_grad_(False)
    with torch.no_grad():
        reference = model(x, t, states, mask, pooled, guidance)
        swap = BlockSwap(model, "cpu")
        assert swap.swapped == set(range(len(swap.blocks)))
        hosts = {id(p): p.data_ptr() for b in swap.blocks for p in b.parameters()}
        assert torch.equal(model(x, t, states, mask, pooled, guidance), reference)
        assert not swap.pending  # nothing left loaded or prefetched after the forward
        assert all(p.data_ptr() == hosts[id(p)] for b in swap.blocks for p in b.parameters())

"""Sliding-tile attention: the FlexAttention block mask means exactly what the docs say. Checked
against dense attention with an explicit boolean mask built independently, token by token, in the
original (untiled) order, on odd grids with partial tiles, padded text and batch 2."""

from __future__ import annotations

import itertools

import pytest
import torch

from model.attention import attention
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.tile_attention import TileAttention, TileWindow, enable_tile_attention, tile_sparsity
from tests.model.builders import dit_inputs, randomize_, rel_err


def _dense_mask(grid, n_text, lens, window: TileWindow) -> torch.Tensor:
    """(B, S, S) allowed pairs, written from the definition with Python loops."""
    coords = list(itertools.product(*(range(n) for n in grid)))
    n_video, seq = len(coords), len(coords) + n_text
    n_tiles = [-(-g // s) for g, s in zip(grid, window.tile, strict=True)]

    def window_of(c):
        out = []
        for axis in range(3):
            tile, span = c[axis] // window.tile[axis], min(window.window[axis], n_tiles[axis])
            start = min(max(tile - window.window[axis] // 2, 0), n_tiles[axis] - span)
            out.append(range(start, start + span))
        return out

    mask = torch.zeros(len(lens), seq, seq, dtype=torch.bool)
    for b, length in enumerate(lens):
        for q in range(seq):
            for kv in range(length):
                if q >= n_video or kv >= n_video:
                    mask[b, q, kv] = True
                    continue
                wins = window_of(coords[q])
                mask[b, q, kv] = all(coords[kv][a] // window.tile[a] in wins[a] for a in range(3))
    return mask


def _masked_reference(q, k, v, mask, lens):
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) / q.shape[-1] ** 0.5
    out = torch.einsum("bhqk,bkhd->bqhd", logits.masked_fill(~mask[:, None], float("-inf")).softmax(-1), v)
    keep = torch.arange(q.shape[1])[None, :] < torch.tensor(lens)[:, None]
    return out * keep[:, :, None, None]


@pytest.mark.parametrize(
    ("grid", "window"),
    [
        ((3, 5, 7), TileWindow(tile=(2, 2, 3), window=(1, 3, 1))),
        ((4, 6, 6), TileWindow(tile=(2, 3, 2), window=(3, 1, 3))),
        ((2, 4, 9), TileWindow(tile=(1, 2, 2), window=(1, 1, 3))),
    ],
)
def test_block_mask_equals_dense_masked_attention(grid, window: TileWindow) -> None:
    torch.manual_seed(0)
    n_text, lens = 5, None
    n_video = grid[0] * grid[1] * grid[2]
    seq = n_video + n_text
    lens = [seq, n_video + 2]  # the second sample's prompt has 2 real tokens of 5
    q, k, v = (torch.randn(2, seq, 2, 8) for _ in range(3))
    sta = TileAttention(window)
    sta.grid = grid
    out = sta(q, k, v, lens, "sdpa")
    expected = _masked_reference(q, k, v, _dense_mask(grid, n_text, lens, window), lens)
    assert torch.allclose(out, expected, atol=1e-5), (out - expected).abs().max()
    assert 0.0 < tile_sparsity(grid, window) < 1.0


def test_a_window_covering_the_grid_is_dense_attention_and_inactive_is_dense() -> None:
    torch.manual_seed(1)
    grid, n_text = (3, 4, 5), 3
    seq = 60 + n_text
    q, k, v = (torch.randn(1, seq, 2, 8) for _ in range(3))
    sta = TileAttention(TileWindow(tile=(1, 2, 2), window=(5, 3, 5)))
    sta.grid = grid
    dense = attention(q, k, v, [seq - 1], "reference")
    assert torch.allclose(sta(q, k, v, [seq - 1], "sdpa"), dense, atol=1e-5)
    narrow = TileAttention(TileWindow(tile=(1, 2, 2), window=(1, 1, 1)))
    narrow.grid = grid
    assert not torch.allclose(narrow(q, k, v, [seq - 1], "sdpa"), dense, atol=1e-3)
    narrow.active = False
    assert torch.allclose(narrow(q, k, v, [seq - 1], "sdpa"), dense, atol=1e-5)


def test_on_the_dit_a_full_window_keeps_the_output_and_a_narrow_one_changes_it() -> None:
    cfg = DiTConfig.preset("tiny")
    torch.manual_seed(0)
    model = randomize_(HunyuanDiT(cfg)).eval()
    x, t, states, mask, pooled, guidance = dit_inputs(cfg, batch=2, grid=(3, 6, 10), text_len=7)
    with torch.no_grad():
        dense = model(x, t, states, mask, pooled, guidance)
        sta = enable_tile_attention(model, TileWindow(tile=(1, 2, 2), window=(5, 5, 9)))
        assert rel_err(model(x, t, states, mask, pooled, guidance), dense) < 1e-4
        assert sta.grid == (3, 3, 5)
        sta.window = TileWindow(tile=(1, 2, 2), window=(1, 1, 1))
        sta._masks.clear()
        assert rel_err(model(x, t, states, mask, pooled, guidance), dense) > 1e-3


def test_bad_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        TileWindow(window=(2, 3, 3))
    sta = TileAttention(TileWindow())
    sta.grid = (4, 4, 4)
    q = torch.zeros(1, 10, 1, 8)
    with pytest.raises(ValueError, match="sequence parallelism"):
        sta(q, q, q, None, "sdpa")

"""Sliding-tile attention (STA) for the DiT's joint [video; text] sequence, through FlexAttention.

The training-free sparse attention of FastVideo's STA, expressed as a FlexAttention block mask:

- the video token grid (T, h, w) is cut into tiles of `tile` = (tt, th, tw) tokens, and the video
  tokens are reordered tile by tile, so one tile is a contiguous run of keys and the mask is
  block-sparse (a tile of 6×8×8 = 384 tokens is three 128-token FlexAttention blocks);
- a video query in tile (a, b, c) sees the video keys of the `window` = (wt, wh, ww) tiles around
  it along each axis. The window is centred and clamped to the grid, so a tile at the border sees
  as many tiles as one in the middle (the same work per query, as in STA);
- text tokens attend globally: every query sees every real text key, and text queries see every
  real key;
- keys past a sample's real length (padded text) are never seen, and those rows of the output are
  zero, as `model.attention.attention` promises.

`enable_tile_attention(model, TileWindow(...))` installs it on every dual- and single-stream block
(the text refiner stays dense); `TileAttention.active = False` makes it dense again (the first
`dense_steps` of sampling use dense attention, as STA allows). Masks are built once per
(grid, lengths, device) and cached. On CUDA the FlexAttention kernel is compiled on first use.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from model.attention import attention
from model.dit import DoubleStreamBlock, HunyuanDiT, SingleStreamBlock

try:  # FlexAttention ships with torch >= 2.5
    from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
except ImportError:  # pragma: no cover - older torch
    BlockMask = Any  # type: ignore[misc,assignment]
    create_block_mask = flex_attention = None  # type: ignore[assignment]

Grid = tuple[int, int, int]


@dataclass(frozen=True)
class TileWindow:
    """Tile and window sizes of sliding-tile attention, in latent tokens and in tiles.

    Attributes:
        tile: tokens per tile along (frames, height, width) of the DiT's token grid.
        window: tiles a query tile sees along each axis (odd: centred on its own tile; a window at
            least as large as the grid of tiles along an axis is dense along that axis).
    """

    tile: Grid = (6, 8, 8)
    window: Grid = (3, 3, 5)

    def __post_init__(self) -> None:
        if len(self.tile) != 3 or len(self.window) != 3:
            raise ValueError(f"tile {self.tile} and window {self.window} need three sizes (t, h, w)")
        if min(self.tile) < 1 or min(self.window) < 1 or any(w % 2 == 0 for w in self.window):
            raise ValueError(f"tile {self.tile} must be positive and window {self.window} odd and positive")


def _tile_order(grid: Grid, tile: Grid, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The permutation that puts video tokens tile by tile (row-major inside a tile) and each
    reordered token's tile coordinates (N, 3)."""
    t, h, w = (torch.arange(n, device=device) for n in grid)
    coords = torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1).reshape(-1, 3)
    tiles = coords // torch.tensor(tile, device=device)
    n_tiles = [-(-g // s) for g, s in zip(grid, tile, strict=True)]
    tile_id = (tiles[:, 0] * n_tiles[1] + tiles[:, 1]) * n_tiles[2] + tiles[:, 2]
    inner = coords - tiles * torch.tensor(tile, device=device)
    inner_id = (inner[:, 0] * tile[1] + inner[:, 1]) * tile[2] + inner[:, 2]
    order = torch.argsort(tile_id * (tile[0] * tile[1] * tile[2]) + inner_id)
    return order, tiles[order]


def _window_start(tiles: torch.Tensor, n_tiles: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """First tile of each query's window per axis: centred, clamped so it stays inside the grid."""
    span = torch.minimum(window, n_tiles)
    return torch.minimum((tiles - window // 2).clamp(min=0), n_tiles - span)


def tile_mask_mod(
    grid: Grid, n_video: int, lens: Sequence[int], window: TileWindow, device: torch.device
) -> Callable[..., torch.Tensor]:
    """FlexAttention mask_mod(b, h, q, kv) over the tile-ordered joint sequence (see module doc).

    Only 1-D gathers of scalars per index, so the mask compiles into the fused GPU kernel."""
    _, tiles = _tile_order(grid, window.tile, device)
    n_tiles = torch.tensor([-(-g // s) for g, s in zip(grid, window.tile, strict=True)], device=device)
    win = torch.tensor(window.window, device=device)
    start = _window_start(tiles, n_tiles, win)
    span = torch.minimum(win, n_tiles)
    tile_t, tile_h, tile_w = (tiles[:, a].contiguous() for a in range(3))
    lo_t, lo_h, lo_w = (start[:, a].contiguous() for a in range(3))
    hi_t, hi_h, hi_w = (lo + span[a] for a, lo in enumerate((lo_t, lo_h, lo_w)))
    lengths = torch.tensor(list(lens), device=device)
    last = n_video - 1

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        del h
        qi, ki = torch.clamp(q, max=last), torch.clamp(kv, max=last)
        local = (
            (tile_t[ki] >= lo_t[qi]) & (tile_t[ki] < hi_t[qi])
            & (tile_h[ki] >= lo_h[qi]) & (tile_h[ki] < hi_h[qi])
            & (tile_w[ki] >= lo_w[qi]) & (tile_w[ki] < hi_w[qi])
        )  # fmt: skip
        return (kv < lengths[b]) & ((q >= n_video) | (kv >= n_video) | local)

    return mask_mod


def _eager_flex(*args: Any, **kwargs: Any) -> torch.Tensor:
    """FlexAttention without compilation (CPU): it warns that the scores are materialised, which is
    what a CPU run at test sizes wants."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention(*args, **kwargs)


class TileAttention:
    """An `attention_fn` for the DiT's blocks: sliding-tile attention while `active`, else dense.

    `grid` (the video token grid of the current forward) is set by the pre-forward hook that
    `enable_tile_attention` registers; `active` is switched by the sampler (dense first steps).
    """

    def __init__(self, window: TileWindow) -> None:
        if flex_attention is None:
            raise RuntimeError(
                "sliding-tile attention needs torch.nn.attention.flex_attention (torch >= 2.5)"
            )
        self.window = window
        self.grid: Grid | None = None
        self.active = True
        self._masks: dict[tuple[Any, ...], tuple[BlockMask, torch.Tensor, torch.Tensor]] = {}
        self._kernel: Callable[..., torch.Tensor] | None = None

    def _mask(
        self, seq: int, lens: list[int], device: torch.device
    ) -> tuple[BlockMask, torch.Tensor, torch.Tensor]:
        assert self.grid is not None
        key = (self.grid, seq, tuple(lens), str(device))
        if key not in self._masks:
            n_video = self.grid[0] * self.grid[1] * self.grid[2]
            order, _ = _tile_order(self.grid, self.window.tile, device)
            mask_mod = tile_mask_mod(self.grid, n_video, lens, self.window, device)
            # On CUDA the mask is evaluated by a compiled kernel: eagerly it would hold S × S booleans.
            block = create_block_mask(
                mask_mod, len(lens), None, seq, seq, device=str(device), _compile=device.type == "cuda"
            )
            self._masks = {key: (block, order, torch.argsort(order))}  # one request's shapes at a time
        return self._masks[key]

    def _flex(self, device: torch.device) -> Callable[..., torch.Tensor]:
        if device.type != "cuda":
            return _eager_flex  # exact, for tests and small sizes
        if self._kernel is None:
            self._kernel = torch.compile(flex_attention, dynamic=False)
        return self._kernel

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        seq_lens: Sequence[int] | None,
        backend: str,
    ) -> torch.Tensor:
        """(B, S, H, Dh) joint [video; text] tensors -> (B, S, H, Dh); see `model.attention.attention`."""
        batch, seq = q.shape[:2]
        if not self.active or self.grid is None:
            return attention(q, k, v, seq_lens, backend)
        n_video = self.grid[0] * self.grid[1] * self.grid[2]
        if n_video > seq:
            raise ValueError(
                f"sliding-tile attention: grid {self.grid} has {n_video} tokens but the sequence has {seq} "
                "(sequence parallelism shards the video tokens; use dense attention with it)"
            )
        lens = [seq] * batch if seq_lens is None else [int(n) for n in seq_lens]
        block, order, inverse = self._mask(seq, lens, q.device)

        def tiled(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[:, order], x[:, n_video:]], dim=1).transpose(1, 2)

        out = self._flex(q.device)(tiled(q), tiled(k), tiled(v), block_mask=block).transpose(1, 2)
        out = torch.cat([out[:, :n_video][:, inverse], out[:, n_video:]], dim=1)
        if min(lens) < seq:
            keep = torch.arange(seq, device=q.device)[None, :] < torch.tensor(lens, device=q.device)[:, None]
            out = out * keep[:, :, None, None]
        return out


def enable_tile_attention(model: HunyuanDiT, window: TileWindow) -> TileAttention:
    """Route the attention of `model`'s dual- and single-stream blocks through sliding-tile
    attention; returns the `TileAttention` (switch `.active` to go dense)."""
    sta = TileAttention(window)
    config = model.config

    def record_grid(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs["x"]
        pt, ph, pw = config.patch_size
        sta.grid = (x.shape[2] // pt, x.shape[3] // ph, x.shape[4] // pw)

    model.register_forward_pre_hook(record_grid, with_kwargs=True)
    for module in model.modules():
        if isinstance(module, (DoubleStreamBlock, SingleStreamBlock)):
            module.attention_fn = sta
    return sta


def tile_sparsity(grid: Grid, window: TileWindow) -> float:
    """Share of video query-key pairs sliding-tile attention skips (0 = dense), counted in tiles
    (partial tiles at the grid's edge make the token count differ slightly)."""
    n_tiles = [-(-g // s) for g, s in zip(grid, window.tile, strict=True)]
    seen = 1.0
    for n, w in zip(n_tiles, window.window, strict=True):
        seen *= min(w, n) / n
    return 1.0 - seen

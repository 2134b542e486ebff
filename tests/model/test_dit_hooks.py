"""The DiT's hooks for parallelism applied from outside: per-block `attention_fn`, model `token_sharding`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from model.attention import attention
from model.dit import DoubleStreamBlock, HunyuanDiT, Rope, SingleStreamBlock
from model.dit_config import DiTConfig
from tests.model.builders import dit_inputs, randomize_


def _blocks(model: HunyuanDiT) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, DoubleStreamBlock | SingleStreamBlock)]


def test_defaults_are_single_device(tiny_dit: HunyuanDiT) -> None:
    assert tiny_dit.token_sharding is None
    blocks = _blocks(tiny_dit)
    assert len(blocks) == tiny_dit.config.depth_double + tiny_dit.config.depth_single
    assert all(block.attention_fn is attention for block in blocks)


def test_attention_fn_is_called_by_every_joint_block(tiny_dit: HunyuanDiT) -> None:
    inputs = dit_inputs(tiny_dit.config, grid=(2, 4, 6), text_len=5)
    with torch.no_grad():
        reference = tiny_dit(*inputs)
    shapes: list[tuple[int, ...]] = []

    def recording(
        q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lens: Sequence[int] | None, backend: str
    ):
        shapes.append(tuple(q.shape))
        return attention(q, k, v, lens, backend)

    for block in _blocks(tiny_dit):
        block.attention_fn = recording
    with torch.no_grad():
        hooked = tiny_dit(*inputs)
    assert torch.equal(hooked, reference)
    cfg = tiny_dit.config
    n_video = 2 * 2 * 3  # (T, H/2, W/2) tokens of the (1, 2, 2) patch
    assert shapes == [(2, n_video + 5, cfg.num_heads, cfg.head_dim)] * (cfg.depth_double + cfg.depth_single)


class ReversedTokens:
    """A TokenSharding that keeps every token but reverses the video order (and its RoPE rows)."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], tuple[int, ...], tuple[int, int, int], int]] = []

    def shard(
        self, img: torch.Tensor, rope: Rope, grid: tuple[int, int, int], n_first: int
    ) -> tuple[torch.Tensor, Rope, int]:
        self.calls.append((tuple(img.shape), tuple(rope[0].shape), grid, n_first))
        n = img.shape[1]
        flip = torch.arange(n - 1, -1, -1)
        rows = torch.cat([flip, torch.arange(n, rope[0].shape[0])])
        return img[:, flip], (rope[0][rows], rope[1][rows]), n_first

    def gather(self, out: torch.Tensor) -> torch.Tensor:
        return out.flip(1)


def test_token_sharding_hook_moves_tokens_with_their_rope_positions(tiny_dit: HunyuanDiT) -> None:
    # Attention is permutation-equivariant when RoPE follows the tokens: a sharding that reorders
    # tokens and tables consistently, then restores the order at gather, changes nothing.
    inputs = dit_inputs(tiny_dit.config, grid=(3, 4, 6), text_len=6)
    with torch.no_grad():
        reference = tiny_dit(*inputs)
        sharding = ReversedTokens()
        tiny_dit.token_sharding = sharding
        hooked = tiny_dit(*inputs)
    assert (hooked - reference).abs().max().item() < 1e-5
    n_video, head_dim = 3 * 2 * 3, tiny_dit.config.head_dim
    assert sharding.calls == [
        ((2, n_video, tiny_dit.config.hidden_size), (n_video + 6, head_dim), (3, 2, 3), 0)
    ]


def test_token_sharding_receives_the_first_frame_token_count_for_token_replace() -> None:
    torch.manual_seed(0)
    model = randomize_(HunyuanDiT(DiTConfig.preset("tiny", image_condition="token_replace"))).eval()
    inputs = dit_inputs(model.config, batch=1, grid=(2, 4, 6), text_len=4)
    first = torch.randn(1, model.config.out_channels, 1, 4, 6)
    with torch.no_grad():
        reference = model(*inputs, first_frame_clean=first)
        sharding = ReversedTokens()
        model.token_sharding = sharding
        model(*inputs, first_frame_clean=first)
    assert reference.shape == (1, 16, 2, 4, 6)
    assert sharding.calls[0][3] == 2 * 3  # one latent frame of (H/2)·(W/2) tokens

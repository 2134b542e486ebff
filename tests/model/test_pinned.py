"""HostArena: offloaded tensors cost their own bytes (not the next power of two), slabs are reused
after a reset, and block swap's training steps reuse one arena's memory for every step's inputs."""

from __future__ import annotations

import psutil
import pytest
import torch

from model.block_swap import BlockSwap
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.live_memory import LiveMemory
from model.lora import LoRASettings, inject_lora
from model.pinned import HostArena
from tests.model.builders import dit_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = DiTConfig.preset("tiny", depth_double=2, depth_single=2)
KIB = 1024


def test_tensors_are_cut_from_slabs_at_their_own_size_and_aligned() -> None:
    arena = HostArena(pin=False, slab_bytes=64 * KIB, align=512)
    a = arena.empty((3, 100), torch.float32)  # 1200 bytes: the next tensor starts at 1536
    b = arena.copy(torch.arange(10, dtype=torch.bfloat16))
    assert a.shape == (3, 100) and a.dtype == torch.float32 and a.is_contiguous()
    assert b.dtype == torch.bfloat16 and b.tolist() == list(range(10))
    assert b.data_ptr() - a.data_ptr() == 1536
    assert arena.used_bytes == 1200 + 20 and arena.reserved_bytes == 64 * KIB
    # What does not fit the current slab opens a new one. A request above the slab size opens the
    # power of two that holds four of it (torch's pinned allocator rounds to one: none is wasted),
    # and the next three of its size share that slab.
    c = arena.empty((63 * KIB,), torch.uint8)  # 2 KiB of the first slab are taken
    big = [arena.empty((100 * KIB,), torch.uint8) for _ in range(4)]
    assert arena.reserved_bytes == 64 * KIB + 64 * KIB + 512 * KIB
    assert len({t.untyped_storage().data_ptr() for t in (a, c, big[0])}) == 3
    assert {t.untyped_storage().data_ptr() for t in big} == {big[0].untyped_storage().data_ptr()}
    a.fill_(1.0)
    c.fill_(7)
    assert a.sum().item() == 300 and b.tolist() == list(range(10))  # the views do not overlap


def test_reset_hands_the_same_memory_out_again_without_new_slabs() -> None:
    arena = HostArena(pin=False, slab_bytes=64 * KIB)
    first = [arena.empty((10 * KIB,), torch.float16) for _ in range(5)]  # 20 KiB each: two slabs
    pointers, reserved = [t.data_ptr() for t in first], arena.reserved_bytes
    arena.reset()
    again = [arena.empty((10 * KIB,), torch.float16) for _ in range(5)]
    assert [t.data_ptr() for t in again] == pointers and arena.reserved_bytes == reserved == 128 * KIB
    assert arena.used_bytes == 5 * 20 * KIB


def test_a_slab_counts_as_host_memory_once_however_many_tensors_it_holds() -> None:
    with LiveMemory() as meter:
        arena = HostArena(pin=False, slab_bytes=64 * KIB)
        views = [arena.empty((1000,), torch.float32) for _ in range(8)]
    assert meter.peak_host_bytes == 64 * KIB and meter.peak_bytes == 0
    assert len(views) == 8


def test_a_slab_the_host_cannot_hold_is_a_memory_error_naming_the_need() -> None:
    arena = HostArena(pin=False, slab_bytes=64 * KIB, purpose="block swap's offloaded block inputs")
    too_big = psutil.virtual_memory().total  # four of it: four times the machine's memory
    with pytest.raises(
        MemoryError, match=r"block swap's offloaded block inputs: a .* GiB host slab .* available"
    ):
        arena.empty((too_big,), torch.uint8)
    assert arena.slabs == [] and arena.used_bytes == 0


@pytest.mark.parametrize("args", [{"slab_bytes": 0}, {"slab_bytes": 3000}, {"align": 3}])
def test_bad_arena_settings_are_refused(args: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="HostArena"):
        HostArena(pin=False, **args)


def test_block_swap_training_steps_reuse_the_activation_arena() -> None:
    torch.manual_seed(0)
    model = HunyuanDiT(CFG)
    model.requires_grad_(False)
    inject_lora(model, LoRASettings(rank=4))
    swap = BlockSwap(model, "cpu", offload_activations=True)
    x, t, states, mask, pooled, guidance = dit_inputs(CFG, grid=(3, 4, 6))
    frozen = sum(s.host.nbytes for slots in swap.slots.values() for s in slots)
    assert swap.weights_host.used_bytes == frozen
    used, reserved = [], []
    for _ in range(3):
        model(x, t, states, mask, pooled, guidance).square().mean().backward()
        used.append(swap.activations_host.used_bytes)
        reserved.append(swap.activations_host.reserved_bytes)
        assert not swap.activations and not swap.fetched
    # Every block's (B, tokens, width) inputs were stashed each step, into the same slab.
    # Each of the 4 blocks keeps (batch, video + text tokens, width) float32 inputs: the double
    # blocks as two streams, the single blocks as one concatenated stream.
    batch, text, video = x.shape[0], states.shape[1], 3 * (4 // 2) * (6 // 2)
    per_block = batch * (video + text) * CFG.hidden_size * 4
    assert used == [4 * per_block] * 3
    assert reserved[0] == reserved[-1] == swap.activations_host.slab_bytes

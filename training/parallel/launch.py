"""Process groups and launching for sequence-parallel DiT runs (one process per GPU, NCCL; gloo on CPU).

Layout: world W = DP x SP ranks. Sequence groups are blocks of SP consecutive ranks (on one node,
so the all-to-alls stay on NVLink); rank g·SP + i is member i of sequence group g, which is data
replica g. All ranks of a sequence group must read the same batch and draw the same noise and
timesteps: seed data and randomness by `ParallelGroups.data_rank`, not the global rank.

Gradients (training.parallel.collectives): with the same loss on every rank of a group, the mean
of a parameter's gradient over the group is the single-device gradient. DeepSpeed and DDP average
over all W ranks, which is then exactly the data-parallel mean: hand DeepSpeed the ordinary config
(`training.deepspeed_config.training_config`, ZeRO-2 or ZeRO-3 partitioned over all W ranks)
and do NOT pass it a sequence-parallel `mpu` (DeepSpeed would then sum over the group instead of
averaging). Only DeepSpeed's samples/s figure counts each sample SP times.

Under Ray Train (what `videofoundry train-dit` runs at scale):

    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    def train_loop(config):                      # runs in each of the W workers, one GPU each
        groups = sequence_parallel_groups(config["sp"])   # after Ray Train's init_process_group
        model = HunyuanDiT(DiTConfig.preset(...)).cuda()
        parallelize_dit(model, groups.sequence)
        backend = DeepSpeedBackend(zero_stage=3)          # reuses Ray Train's NCCL group
        ...                                               # data sharded by groups.data_rank

    TorchTrainer(train_loop, train_loop_config={"sp": 8},
                 scaling_config=ScalingConfig(num_workers=W, use_gpu=True),
                 torch_config=TorchConfig(backend="nccl"),
                 run_config=...).fit()
    # with ray.init(runtime_env={"env_vars": nccl_environment()}) (or the RayJob's runtimeEnvYAML)

Every process that may touch NCCL must carry `nccl_environment()` (NVLink multicast off: a program
that uses it can put a shared host's GPUs out of service); torchrun likewise:
`NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 torchrun --nproc-per-node 8 ...`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.distributed import ProcessGroup

from training.parallel.ulysses import SequenceParallelError

# NVLink multicast (NVLS) off in NCCL, PyTorch symmetric memory and NVSHMEM (device README).
NCCL_SAFE_ENV: dict[str, str] = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}


def nccl_environment() -> dict[str, str]:
    """Environment variables every NCCL process of ours runs with (a copy; for Ray runtime_env)."""
    return dict(NCCL_SAFE_ENV)


def apply_nccl_environment() -> None:
    """Set `NCCL_SAFE_ENV` in this process (overriding any other value) before NCCL initialises."""
    os.environ.update(NCCL_SAFE_ENV)


@dataclass(frozen=True)
class ParallelGroups:
    """This rank's place in the DP x SP layout (see the module docstring).

    Attributes:
        sequence: process group of this rank's sequence group (SP ranks).
        sequence_size: SP; sequence_rank: index in the sequence group, in [0, SP).
        data_size: DP = W / SP; data_rank: which data replica (sequence group) this rank belongs to.
    """

    sequence: ProcessGroup | None
    sequence_size: int
    sequence_rank: int
    data_size: int
    data_rank: int


def sequence_parallel_groups(sequence_size: int) -> ParallelGroups:
    """Build the sequence groups over the default process group (collective: every rank calls it).

    Raises SequenceParallelError when the world size is not a multiple of `sequence_size`.
    """
    if not dist.is_initialized():
        raise SequenceParallelError("sequence_parallel_groups needs torch.distributed initialised first")
    world, rank = dist.get_world_size(), dist.get_rank()
    if sequence_size < 1 or world % sequence_size:
        raise SequenceParallelError(
            f"world size {world} is not a multiple of the sequence-parallel size {sequence_size}"
        )
    mine: ProcessGroup | None = None
    for start in range(0, world, sequence_size):
        # new_group is collective over the whole world: every rank creates every group.
        group = dist.new_group(list(range(start, start + sequence_size)))
        if start <= rank < start + sequence_size:
            mine = group
    return ParallelGroups(
        mine, sequence_size, rank % sequence_size, world // sequence_size, rank // sequence_size
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for MASTER_PORT of local runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local_worker(
    rank: int,
    fn: Callable[..., Any],
    world: int,
    port: int,
    backend: str,
    timeout_s: float,
    args: tuple[Any, ...],
) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    os.environ.update(LOCAL_RANK=str(rank))
    if backend == "nccl":
        apply_nccl_environment()
        torch.cuda.set_device(rank)
    # One thread per process: the ranks share the machine's cores.
    torch.set_num_threads(1)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout_s))
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


def spawn_local(
    fn: Callable[..., Any],
    world: int,
    args: tuple[Any, ...] = (),
    backend: str = "gloo",
    timeout_s: float = 120.0,
) -> None:
    """Run fn(rank, world, *args) in `world` fresh processes joined in a process group on 127.0.0.1.

    For CPU runs (gloo) and single-node GPU runs (nccl, one GPU per rank, NVLink multicast off).
    `fn` must be importable (a module-level function). A rank that raises makes this raise (the
    others are stopped); a collective that waits longer than `timeout_s` fails instead of hanging.
    """
    if world < 1:
        raise ValueError(f"world must be >= 1, got {world}")
    mp.spawn(_local_worker, args=(fn, world, free_port(), backend, timeout_s, args), nprocs=world, join=True)

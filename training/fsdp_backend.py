"""FSDP2 (`torch.distributed.fsdp.fully_shard`) backend for `training.backends`: ZeRO-2 or ZeRO-3 style.

Layout (torchtitan style): a 2-D DeviceMesh ("dp", "sp") of W = DP x SP ranks, row-major, so a
sequence group is SP consecutive ranks (`training.parallel.launch`'s layout). Parameters are
sharded over all W ranks (a 1-D mesh of the world): ranks of one sequence group compute the same
loss, so FSDP's reduce-scatter average over W is exactly the data-parallel mean (the argument of
training.parallel.launch for DeepSpeed). `sequence_group` is the mesh's "sp" group for
`training.parallel.parallelize_dit`.

Each DiT block is its own FSDP unit (one all-gather per block, the next one prefetched), then the
root. `sharding`:

    "full"   reshard_after_forward=True: parameters live sharded, gathered per block in forward and
             again in backward (ZeRO-3 memory; one more all-gather per block)
    "zero2"  reshard_after_forward=False: the gathered block stays until its backward (ZeRO-2
             memory for parameters during the step; no second all-gather)

Mixed precision: on CUDA with bf16, `MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)`:
fp32 sharded master weights, bf16 compute, fp32 gradient reduction; autocast is off (the policy
casts). On CPU everything is fp32.

Weights between steps are DTensor shards: the EMA keeps DTensor shards too (training.ema),
`full_state_dict` gathers whole tensors (every rank calls it; used for exports and the
safetensors copy of a checkpoint), and `save_sharded` / `load_sharded` write and read the model,
optimizer and EMA through torch.distributed.checkpoint, which reshards on load: a checkpoint saved
by 2 ranks resumes on 1 or 4. With `async_save` (the default) `begin_save_sharded` copies the shards
to host memory and writes them from a background thread (`torch.distributed.checkpoint.async_save`
over a gloo group, which async save needs), while the caller gathers and writes the whole-weight
copies; the checkpoint is published only after both are on disk (training.checkpointing).

Why FSDP2 rather than DeepSpeed ZeRO-3 for the trainers: FSDP2 parameters are DTensors that
torch.distributed.checkpoint saves and reshards natively, the EMA can be kept as DTensor shards with
plain tensor arithmetic, per-block units compose with `torch.utils.checkpoint` and regional
`torch.compile` of the blocks, and sequence parallelism needs no DeepSpeed `mpu`. ZeRO-3 hides
its partitions inside the engine (gathering an EMA needs `GatheredParameters` around every read)
and its checkpoints reshard only through offline conversion. Speed does not decide it on CPU: on 2
gloo ranks (tiny DiT, a shared 2-core machine, `benchmarks/sharded_step.py --smoke --two-rank`)
a step took 1.86 s with FSDP2 full sharding and 1.30 s with ZeRO-3 — both dominated by per-collective
latency of gloo on a busy machine, not by the sharding scheme. The GPU comparison (sharded vs plain
on one H100) is the script's default mode: on one H100, bench-4x8 at 14,566 tokens ran at 0.97x
the plain step's speed eager and 0.96x with compiled blocks, and with selective checkpointing at
67,576 tokens 409 TFLOP/s (benchmarks/results/sharded_step_h100.json).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.tensor import DTensor

from training.backends import OptimizerSettings, ProcessGroupBackend, SteppedModel, _TorchStepped

SHARDINGS = ("zero2", "full")
DCP_DIR = "dcp"


class ShardingError(ValueError):
    """An FSDP layout that cannot run (unknown sharding, world not divisible by SP)."""


class _ShardedStepped(_TorchStepped):
    """AdamW over DTensor shards: the optimizer state goes through DCP, not `trainer_state.pt`."""

    def step(self, loss: torch.Tensor) -> float:
        loss.backward()
        params = [p for p in self.module.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip if self.grad_clip > 0 else float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])


# The block lists a model may rerun under activation checkpointing (HunyuanDiT._run).
RECOMPUTED_BLOCK_LISTS = ("double_blocks", "single_blocks")


def transformer_blocks(module: nn.Module) -> list[nn.Module]:
    """The repeated blocks that become their own FSDP units: entries of the module's ModuleLists."""
    blocks: list[nn.Module] = []
    for child in module.modules():
        if isinstance(child, nn.ModuleList):
            blocks.extend(child)
    return blocks


class FSDPBackend(ProcessGroupBackend):
    """FSDP2 over the process group (see module docstring); `sequence_parallel` = SP of the 2-D mesh."""

    partitions_parameters = True
    gathers_full_weights = True
    sharded_state_dir = DCP_DIR

    def __init__(
        self,
        sharding: str = "full",
        sequence_parallel: int = 1,
        precision: str = "auto",
        async_save: bool = True,
    ) -> None:
        if sharding not in SHARDINGS:
            raise ShardingError(f"FSDP sharding must be one of {', '.join(SHARDINGS)}, got {sharding!r}")
        super().__init__(precision)
        if self.precision == "fp16":
            raise ShardingError("the FSDP backend runs bf16 or fp32; fp16 needs a sharded grad scaler")
        if sequence_parallel < 1 or self.world_size % sequence_parallel:
            raise ShardingError(
                f"world size {self.world_size} is not a multiple of the sequence-parallel size {sequence_parallel}"
            )
        self.sharding = sharding
        self.async_save = async_save
        self._save_group: dist.ProcessGroup | None = None  # gloo, made at the first async save
        self.mesh: DeviceMesh = init_device_mesh(
            self.device.type,
            (self.world_size // sequence_parallel, sequence_parallel),
            mesh_dim_names=("dp", "sp"),
        )
        self.shard_mesh: DeviceMesh = init_device_mesh(self.device.type, (self.world_size,))
        self.sequence_parallel = sequence_parallel
        self.sequence_group = self.mesh.get_group("sp")

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        yield  # the mixed-precision policy casts parameters and inputs

    def _policy(self, cast_forward_inputs: bool = True) -> Any:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        if self.precision == "bf16":
            return MixedPrecisionPolicy(
                param_dtype=torch.bfloat16,
                reduce_dtype=torch.float32,
                cast_forward_inputs=cast_forward_inputs,
            )
        return MixedPrecisionPolicy()

    def wrap(self, name: str, module: nn.Module, optimizer: OptimizerSettings) -> SteppedModel:
        from torch.distributed.fsdp import fully_shard

        module.to(self.device)
        with torch.no_grad():  # identical starting weights on every rank before they are sharded
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)
        reshard = self.sharding == "full"
        # Only the root casts its inputs. Blocks get activations already in bf16 and keep float32
        # tables (RoPE) as given: FSDP skips its pre-forward hook when activation checkpointing
        # reruns a block, so a cast there would make the recompute differ from the forward.
        rerun = {id(b) for name in RECOMPUTED_BLOCK_LISTS for b in getattr(module, name, ())}
        for block in transformer_blocks(module):
            policy = self._policy(cast_forward_inputs=id(block) not in rerun)
            fully_shard(block, mesh=self.shard_mesh, reshard_after_forward=reshard, mp_policy=policy)
        fully_shard(module, mesh=self.shard_mesh, reshard_after_forward=reshard, mp_policy=self._policy())
        return _ShardedStepped(module, optimizer, "fp32")

    def full_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Collective: whole CPU tensors of a state dict of DTensor shards (plain tensors pass through)."""
        return {
            k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().cpu() for k, v in state.items()
        }

    def _dcp_state(self, models: dict[str, SteppedModel], extra: dict[str, Any] | None) -> dict[str, Any]:
        """{name: {"model", "optim"}} of DTensor shards (+ `extra`): what DCP saves and loads in place."""
        from torch.distributed.checkpoint.state_dict import get_state_dict

        state: dict[str, Any] = dict(extra or {})
        for name, model in models.items():
            assert isinstance(model, _ShardedStepped)
            weights, optim = get_state_dict(model.module, model.optimizer)
            state[name] = {"model": weights, "optim": optim}
        return state

    def save_sharded(
        self, models: dict[str, SteppedModel], staging: Path, extra: dict[str, Any] | None = None
    ) -> bool:
        import torch.distributed.checkpoint as dcp

        dcp.save(self._dcp_state(models, extra), checkpoint_id=str(staging))
        self.barrier()
        return True

    def begin_save_sharded(
        self, models: dict[str, SteppedModel], staging: Path, extra: dict[str, Any] | None = None
    ) -> Callable[[], bool]:
        """Collective: stage the shards in host memory and write them in the background (see module)."""
        if not self.async_save:
            return super().begin_save_sharded(models, staging, extra)
        import torch.distributed.checkpoint as dcp

        if self._save_group is None:
            self._save_group = dist.new_group(backend="gloo")
        future = dcp.async_save(
            self._dcp_state(models, extra), checkpoint_id=str(staging), process_group=self._save_group
        )

        def finish() -> bool:
            # With the default (synchronous) stager async_save returns the upload's Future; torch
            # versions with an async stager return a response holding it as `upload_completion`.
            done: Any = getattr(future, "upload_completion", future)
            done.result()
            self.barrier()
            return True

        return finish

    def load_sharded(
        self, models: dict[str, SteppedModel], directory: Path, extra: dict[str, Any] | None = None
    ) -> None:
        """Read the shards into this run's layout (DCP reshards: any world size) and `extra` in place."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import set_state_dict

        state = self._dcp_state(models, extra)
        dcp.load(state, checkpoint_id=str(directory))
        for name, model in models.items():
            assert isinstance(model, _ShardedStepped)
            set_state_dict(
                model.module,
                model.optimizer,
                model_state_dict=state[name]["model"],
                optim_state_dict=state[name]["optim"],
            )


def consolidate_sharded(directory: Path, parts: tuple[str, ...] = ("dit.model", "ema")) -> dict[str, Any]:
    """Whole tensors of `parts` of a DCP checkpoint folder, read in one process (no process group).

    The offline path from shards to full weights (e.g. `dcp/` of a checkpoint written by any number
    of ranks): each part is a dotted key of what `save_sharded` wrote ("dit.model", "dit.optim",
    "ema"); only those are read. Returns {part: {tensor name: tensor}}.
    """
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict_from_keys

    if not (directory / ".metadata").is_file():
        raise FileNotFoundError(f"{directory}: not a torch.distributed.checkpoint folder (no .metadata)")
    loaded = _load_state_dict_from_keys(set(parts), checkpoint_id=str(directory))
    out: dict[str, Any] = {}
    for part in parts:
        node: Any = loaded
        for key in part.split("."):
            if not isinstance(node, dict) or key not in node:
                raise KeyError(f"{directory} holds no {part!r}")
            node = node[key]
        out[part] = node
    return out

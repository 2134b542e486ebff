"""Parallelism for the DiT applied from outside the model (torchtitan style): Ulysses sequence parallel.

Public API:

training.parallel.parallelize_dit(model, group=None, *, pad_frames=True, check_inputs=True) -> model
    In place: the model's video tokens are split over `group` by latent frames after patch
    embedding and gathered before unpatchify; each dual/single-stream block's attention becomes
    Ulysses all-to-all attention (text tokens replicated). Every rank calls the model with the same
    inputs and gets the full output. remove_sequence_parallel(model) undoes it.
training.parallel.ulysses: ulysses_attention, plan_video_shards, ShardPlan, check_heads,
    SequenceParallelError (divisibility problems: heads % P, latent frames < P or % P without padding).
training.parallel.collectives: differentiable seq_to_heads / heads_to_seq all-to-alls and
    gather_heads / gather_tokens all-gathers (gradient convention in its docstring).
training.parallel.launch: process groups (data x sequence parallel), the NCCL environment of the
    device machines, DeepSpeed wiring and how to launch under Ray Train / torchrun.
"""

from training.parallel.dit import (
    DiTSequenceParallel,
    is_sequence_parallel,
    parallelize_dit,
    remove_sequence_parallel,
)
from training.parallel.ulysses import SequenceParallelError, ShardPlan, check_heads, plan_video_shards

__all__ = [
    "DiTSequenceParallel",
    "SequenceParallelError",
    "ShardPlan",
    "check_heads",
    "is_sequence_parallel",
    "parallelize_dit",
    "plan_video_shards",
    "remove_sequence_parallel",
]

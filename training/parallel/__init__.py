"""Parallelism for the DiT applied from outside the model (torchtitan style): Ulysses sequence parallel.

Public API:

training.parallel.parallelize_dit(model, group=None, *, whole_frames=False, check_inputs=True) -> model
    In place: after patch embedding each rank keeps a contiguous range of the video tokens (whole
    latent frames when P divides T, else token ranges padded by < P tokens), every dual/single-stream
    block's attention becomes Ulysses all-to-all attention (text tokens replicated), and the
    outputs are gathered before unpatchify. Every rank calls the model with the same inputs and
    gets the full output. remove_sequence_parallel(model) undoes it.
training.parallel.ulysses: ulysses_attention, plan_video_shards, ShardPlan, check_heads,
    SequenceParallelError (heads % P; fewer video tokens than ranks; frames % P with whole_frames).
training.parallel.collectives: differentiable seq_to_heads / heads_to_seq all-to-alls and
    gather_heads / gather_tokens all-gathers (gradient convention in its docstring).
training.parallel.launch: process groups (data x sequence parallel), the NCCL environment of the
    device machines, DeepSpeed wiring, how to launch under Ray Train / torchrun, spawn_local.

Parallel inference through `serving.generate` (serving cannot import training, so the caller that
launches the ranks does this; one process per GPU, same request and seed on every rank):

    pipeline = serving.load_pipeline(model_ref, config=ServingConfig.preset("paper", device=f"cuda:{rank}"))
    parallelize_dit(pipeline.transformer, group)   # the cached pipeline is now sequence-parallel
    video = serving.generate(prompt, model=model_ref, config=..., seed=seed)   # whole video on every rank
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

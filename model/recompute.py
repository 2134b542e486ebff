"""What a checkpointed DiT block keeps for backward: the activation-checkpointing policies.

- "full": only the block's inputs; backward reruns the whole block, attention included.
- "save-attention" (selective): the block's inputs plus every attention kernel's outputs (the
  attention output and its softmax statistics). Backward reruns the projections, the MLP and the
  pointwise ops but not attention. At 544x960x129 (67,576 tokens) attention is most of a block's
  forward FLOPs, so this recomputes a small share of the work for one extra (S x D) tensor per block.

The policy is torch's selective checkpointing (`create_selective_checkpoint_contexts`): attention
ops are saved, everything else is recomputed. Attention that runs outside these aten kernels
(FlexAttention, flash-attn's own kernels) is recomputed as under "full".
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

POLICIES = ("full", "save-attention")

_ATTENTION_OP_NAMES = (
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_flash_attention_forward",
    "_efficient_attention_forward",
)
ATTENTION_OPS = frozenset(
    getattr(torch.ops.aten, name).default for name in _ATTENTION_OP_NAMES if hasattr(torch.ops.aten, name)
)


def _save_attention(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in ATTENTION_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def checkpoint_kwargs(policy: str) -> dict[str, Any]:
    """Keyword arguments for `torch.utils.checkpoint.checkpoint` (non-reentrant) under `policy`."""
    if policy == "full":
        return {"use_reentrant": False}
    if policy == "save-attention":
        return {
            "use_reentrant": False,
            "context_fn": functools.partial(create_selective_checkpoint_contexts, _save_attention),
        }
    raise ValueError(f"checkpoint policy must be one of {', '.join(POLICIES)}, got {policy!r}")

"""Per-GPU memory of a DiT training step under each sharding × sequence-parallel × checkpointing choice.

`plan_training(config, gpus, gpu_memory_gb, video_tokens, ...)` returns one `MemoryEstimate` per
layout and recommends the first that fits (`TrainingPlan.recommended`); `videofoundry
plan-training` prints it. Nothing is built: parameters come from `model.flops.dit_param_count`,
activations from the per-block counts below.

State per GPU (P parameters, W GPUs; every sharding shards over all W ranks, SP ranks included,
as the FSDP2 and DeepSpeed backends do):

    sharding  weights                              gradients            optimizer (AdamW)   EMA
    none      P·4 (fp32) + P·2 under bf16 autocast P·4                  P·8                 P·4
    zero2     P·4/W + P·c (unsharded compute copy) P·4/W + block·4      P·8/W               P·4/W
    full      P·4/W + 2·block·c (gathered + prefetch) P·4/W + block·4   P·8/W               P·4/W

Under bf16 autocast (the plain and DDP backends) the forward caches a bf16 copy of every weight
until backward. c is the compute dtype's bytes (2 for bf16 mixed precision, 4 for fp32), `block`
the parameters of the largest transformer block (FSDP2 gathers one block at a time and prefetches
the next; the unsharded gradient of one block exists before its reduce-scatter). zero2 and full
are the FSDP2 backend's (training.fsdp_backend): the EMA is sharded with the parameters in both.
Checked against H100 peaks of the plain step (benchmarks/results/dit_train_gpu_h100.json).

Activations (elements saved for backward, counted from the tensors the blocks of `model.dit` save;
the test measures them with saved-tensor hooks on small configs). Per token of a block's joint
sequence s = ceil(V / SP) + L (Ulysses keeps 1/SP of the video tokens and all text tokens per rank):

    dual-stream block    17·D + 2·M + 3·H + 4   (input, 2 LayerNorms + stats, modulations, QKV,
                                                 RMS-normed and rotated q/k, attention q/k/v/out +
                                                 log-sum-exp, projections, gates, MLP in/GELU/out)
    single-stream block  12·D + 2·M + 3·H + 2
    token-refiner block  (L tokens) 12·D + 8·D + H
    final layer          3·D per video token

With per-block activation checkpointing ("full") each block keeps only its inputs (D per token)
and one block at a time is recomputed in backward, so activations = Σ inputs + the largest block's
count. The selective policy ("save-attention", model.recompute) also keeps each attention call's
output and log-sum-exp: D + 2·H more per token per block (the log-sum-exp is float32).
Activation elements have the compute dtype's bytes. Not modelled: allocator fragmentation and
communication buffers, hence `headroom` (default 10%) of the GPU left unplanned.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from model.dit_config import DiTConfig
from model.flops import dit_param_count

SHARDINGS = ("none", "zero2", "full")
# Activation checkpointing choices, least recompute first: none, attention kept, whole blocks rerun.
CHECKPOINTING = ("none", "save-attention", "full")
GB = 1e9


class PlanError(ValueError):
    """The planner was asked for an impossible layout (GPUs, tokens, heads)."""


@dataclass(frozen=True)
class Activations:
    """Elements saved for backward by one forward of `micro_batch` samples on one rank."""

    total: int
    per_block_max: int


def _block_param_count(config: DiTConfig) -> int:
    d, m, dh = config.hidden_size, config.mlp_hidden, config.head_dim
    double = 2 * (d * 6 * d + 6 * d + d * 3 * d + 3 * d + 2 * dh + d * d + d + d * m + m + m * d + d)
    single = d * (3 * d + m) + 3 * d + m + (d + m) * d + d + 2 * dh + d * 3 * d + 3 * d
    return max(double if config.depth_double else 0, single if config.depth_single else 0)


def activation_elements(
    config: DiTConfig,
    video_tokens: int,
    text_tokens: int,
    sequence_parallel: int = 1,
    checkpointing: str = "none",
    micro_batch: int = 1,
) -> Activations:
    """Saved-for-backward elements of one training forward on one rank (see the module docstring).

    `checkpointing`: one of CHECKPOINTING.
    """
    if video_tokens < 1 or text_tokens < 1 or micro_batch < 1 or sequence_parallel < 1:
        raise PlanError("video tokens, text tokens, micro-batch and SP must all be >= 1")
    if checkpointing not in CHECKPOINTING:
        raise PlanError(f"checkpointing must be one of {', '.join(CHECKPOINTING)}, got {checkpointing!r}")
    d, m, h = config.hidden_size, config.mlp_hidden, config.num_heads
    v = math.ceil(video_tokens / sequence_parallel)
    s = v + text_tokens
    double = (17 * d + 2 * m + 3 * h + 4) * s
    single = (12 * d + 2 * m + 3 * h + 2) * s
    refiner = config.depth_refiner * (20 * d + h) * text_tokens
    final = 3 * d * v
    largest = max(double if config.depth_double else 0, single if config.depth_single else 0)
    if checkpointing != "none":
        kept = d + (d + 2 * h if checkpointing == "save-attention" else 0)
        blocks = (config.depth_double + config.depth_single) * kept * s + largest
    else:
        blocks = config.depth_double * double + config.depth_single * single
    return Activations(micro_batch * (blocks + refiner + final), micro_batch * largest)


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes of one layout; `fits` against the planned GPU memory."""

    sharding: str
    sequence_parallel: int
    checkpointing: str
    weights: float
    gradients: float
    optimizer: float
    ema: float
    activations: float
    fits: bool

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.ema + self.activations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def estimate(
    config: DiTConfig,
    gpus: int,
    sharding: str,
    sequence_parallel: int,
    checkpointing: str,
    video_tokens: int,
    text_tokens: int,
    micro_batch: int = 1,
    compute_bytes: int = 2,
    budget_bytes: float = math.inf,
) -> MemoryEstimate:
    """Bytes per GPU of one layout (module docstring table); `fits` = total <= `budget_bytes`."""
    if sharding not in SHARDINGS:
        raise PlanError(f"sharding must be one of {', '.join(SHARDINGS)}, got {sharding!r}")
    p = dit_param_count(config)
    block = _block_param_count(config)
    if sharding == "none":
        autocast_copies = 2.0 * p if compute_bytes == 2 else 0.0
        weights, grads, optim, ema = 4.0 * p + autocast_copies, 4.0 * p, 8.0 * p, 4.0 * p
    elif sharding == "zero2":
        weights, grads, optim, ema = (
            4 * p / gpus + compute_bytes * p,
            4 * p / gpus + 4 * block,
            8 * p / gpus,
            4 * p / gpus,
        )
    else:
        weights = 4 * p / gpus + 2 * compute_bytes * block
        grads, optim, ema = 4 * p / gpus + 4 * block, 8 * p / gpus, 4 * p / gpus
    acts = activation_elements(
        config, video_tokens, text_tokens, sequence_parallel, checkpointing, micro_batch
    )
    activations = float(acts.total * compute_bytes)
    total = weights + grads + optim + ema + activations
    return MemoryEstimate(
        sharding,
        sequence_parallel,
        checkpointing,
        weights,
        grads,
        optim,
        ema,
        activations,
        total <= budget_bytes,
    )


@dataclass(frozen=True)
class TrainingPlan:
    """Every layout considered, in preference order, and the first that fits (None: nothing fits)."""

    parameters: int
    gpus: int
    gpu_memory_gb: float
    budget_gb: float
    video_tokens: int
    text_tokens: int
    micro_batch: int
    options: tuple[MemoryEstimate, ...]
    recommended: MemoryEstimate | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "gpus": self.gpus,
            "gpu_memory_gb": self.gpu_memory_gb,
            "budget_gb": self.budget_gb,
            "video_tokens": self.video_tokens,
            "text_tokens": self.text_tokens,
            "micro_batch": self.micro_batch,
            "options": [o.to_dict() for o in self.options],
            "recommended": self.recommended.to_dict() if self.recommended else None,
        }


def plan_training(
    config: DiTConfig,
    gpus: int,
    gpu_memory_gb: float,
    video_tokens: int,
    text_tokens: int = 256,
    micro_batch: int = 1,
    compute_bytes: int = 2,
    headroom: float = 0.1,
) -> TrainingPlan:
    """All layouts for `gpus` GPUs of `gpu_memory_gb` GB; recommends the cheapest that fits.

    Preference (cheapest first): no activation checkpointing, then the selective policy (reruns
    the linears, about a tenth more compute at 67k tokens), then full per-block checkpointing
    (a third more compute), then a smaller SP degree (fewer all-to-alls), then less sharding (fewer
    gathers). SP degrees are the divisors of `gpus` that divide the head count.
    """
    if gpus < 1 or gpu_memory_gb <= 0 or not 0 <= headroom < 1:
        raise PlanError(
            f"need gpus >= 1, gpu memory > 0 and headroom in [0, 1); got {gpus}, {gpu_memory_gb}, {headroom}"
        )
    budget = gpu_memory_gb * GB * (1 - headroom)
    degrees = [k for k in range(1, gpus + 1) if gpus % k == 0 and config.num_heads % k == 0]
    options = tuple(
        estimate(
            config, gpus, sharding, sp, ckpt, video_tokens, text_tokens, micro_batch, compute_bytes, budget
        )
        for ckpt in CHECKPOINTING
        for sp in degrees
        for sharding in SHARDINGS
        if not (gpus == 1 and sharding != "none")
    )
    recommended = next((o for o in options if o.fits), None)
    return TrainingPlan(
        dit_param_count(config),
        gpus,
        gpu_memory_gb,
        budget / GB,
        video_tokens,
        text_tokens,
        micro_batch,
        options,
        recommended,
    )


def format_plan(plan: TrainingPlan) -> str:
    """A human table of `plan` (GB per GPU) with the recommendation last."""
    lines = [
        f"{plan.parameters / 1e9:.2f} B parameters on {plan.gpus} GPU(s) of {plan.gpu_memory_gb:g} GB "
        f"(planning {plan.budget_gb:.1f} GB); {plan.video_tokens} video + {plan.text_tokens} text tokens "
        f"x {plan.micro_batch} per micro-batch",
        f"{'sharding':<9}{'SP':>3} {'checkpointing':<15}{'weights':>9}{'grads':>8}{'optim':>8}{'EMA':>8}{'activ':>9}{'total':>9}  fits",
    ]
    for o in plan.options:
        lines.append(
            f"{o.sharding:<9}{o.sequence_parallel:>3} {o.checkpointing:<15}"
            f"{o.weights / GB:>9.1f}{o.gradients / GB:>8.1f}{o.optimizer / GB:>8.1f}{o.ema / GB:>8.1f}"
            f"{o.activations / GB:>9.1f}{o.total / GB:>9.1f}  {'yes' if o.fits else 'no'}"
        )
    r = plan.recommended
    if r is None:
        lines.append("recommended: none fits; add GPUs or cut tokens per micro-batch")
    else:
        lines.append(
            f"recommended: --sharding {r.sharding} --sequence-parallel {r.sequence_parallel} "
            f"activation_checkpointing={'false' if r.checkpointing == 'none' else 'true'}"
            + (f" checkpoint_policy={r.checkpointing}" if r.checkpointing != "none" else "")
            + f" ({r.total / GB:.1f} GB per GPU)"
        )
    return "\n".join(lines)

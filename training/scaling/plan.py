"""The plan of a scaling-law sweep: a ladder of DiT sizes trained at each IsoFLOP budget.

For every budget C and size, the run trains N = `dit_param_count` parameters for
steps = round(C / (batch · F)) optimizer steps, where F = `dit_flops(...).training` is the compute of
one sample (forward + backward, attention and text tokens included). Its data D is the video
tokens it sees, steps · batch · V (V patch tokens per sample), so D ≈ C / (F / V): the tokens a
budget buys at that size. Runs that would get fewer than `min_steps` steps are left out (too small
a budget for that size) and listed in `SweepPlan.skipped`.

The size ladder varies depth and width together, as the report's family does: head dim fixed at
the base preset's (128 on the paper profile, as in the 13 B model), width = heads × head dim, and
single-stream blocks about twice the dual-stream ones (20 + 40 in the 13 B model). The paper ladder
spans ≈ 0.1 B to 1.0 B parameters; the tiny ladder ≈ 0.1 M to 4 M, for CPU sweeps; the gpu ladder
≈ 1.6 M to 75 M, for one GPU in minutes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from model.dit_config import DiTConfig
from model.flops import dit_flops, dit_param_count, video_token_count
from model.presets import PresetConfig

FAMILIES = ("image", "video")


@dataclass(frozen=True)
class SizeSpec:
    """One rung of the ladder: width and the two depths; the name reads `w<width>-<double>x<single>`."""

    hidden_size: int
    depth_double: int
    depth_single: int

    @property
    def name(self) -> str:
        return f"w{self.hidden_size}-{self.depth_double}x{self.depth_single}"

    def dit_config(self, base: DiTConfig) -> DiTConfig:
        """`base` with this width and depth; the head dim (and so the RoPE split) stays the base's."""
        if self.hidden_size % base.head_dim:
            raise ValueError(f"size {self.name}: width must be a multiple of the head dim {base.head_dim}")
        return dataclasses.replace(
            base,
            hidden_size=self.hidden_size,
            num_heads=self.hidden_size // base.head_dim,
            depth_double=self.depth_double,
            depth_single=self.depth_single,
        )


def _ladder(*rungs: tuple[int, int, int]) -> tuple[SizeSpec, ...]:
    return tuple(SizeSpec(*rung) for rung in rungs)


@dataclass(frozen=True)
class SweepConfig(PresetConfig):
    """What a sweep varies and holds fixed.

    Attributes:
        dit_preset: `DiTConfig` preset giving everything but width and depth (text dims, patch, head dim).
        sizes: the size ladder, smallest first.
        image_latent: (T, H, W) latent grid of one image sample (T = 1).
        video_latent: (T, H, W) latent grid of one video sample.
        text_tokens: real text tokens per sample.
        image_batch_size, video_batch_size: samples per optimizer step of each family.
        min_steps: a run needs at least this many steps to say anything about its size.
        train_preset: `DiTTrainConfig` preset each run's training config starts from (optimizer,
            VAE, text encoder, precision, workers); `training.scaling.run` sets the rest.
        lr, warmup_steps: peak AdamW learning rate and its linear warm-up, the same for every run.
    """

    dit_preset: str
    sizes: tuple[SizeSpec, ...]
    image_latent: tuple[int, int, int]
    video_latent: tuple[int, int, int]
    text_tokens: int
    image_batch_size: int
    video_batch_size: int
    min_steps: int
    train_preset: str
    lr: float
    warmup_steps: int

    def size(self, name: str) -> SizeSpec:
        for spec in self.sizes:
            if spec.name == name:
                return spec
        raise ValueError(f"unknown sweep size {name!r}; choose from {', '.join(s.name for s in self.sizes)}")


SweepConfig.PRESETS = {
    # CPU, minutes: 64 px images (8×8 latents), 9-frame 64 px videos (3×8×8), 107 k … 4.1 M params.
    "tiny": SweepConfig(
        dit_preset="tiny",
        sizes=_ladder((32, 1, 1), (64, 1, 1), (64, 1, 2), (96, 1, 2), (128, 2, 4), (160, 2, 4)),
        image_latent=(1, 8, 8),
        video_latent=(3, 8, 8),
        text_tokens=8,
        image_batch_size=8,
        video_batch_size=4,
        min_steps=20,
        train_preset="tiny",
        lr=2e-3,
        warmup_steps=10,
    ),
    # One GPU, minutes: 128 px images (16×16 latents), 17-frame 128 px videos (5×16×16), batch 64;
    # 1.6 M … 75 M params on the tiny text encoder (benchmarks/scaling_sweep_gpu.py: ~9 runs, one H100).
    "gpu": SweepConfig(
        dit_preset="tiny",
        sizes=_ladder((128, 1, 2), (192, 2, 3), (256, 2, 4), (320, 3, 5), (384, 3, 6), (512, 4, 8)),
        image_latent=(1, 16, 16),
        video_latent=(5, 16, 16),
        text_tokens=16,
        image_batch_size=64,
        video_batch_size=16,
        min_steps=100,
        train_preset="tiny",
        lr=1e-3,
        warmup_steps=50,
    ),
    # The report's image (256 px, 32×32 latents) then video (33 frames at 256 px, 9×32×32) sweeps,
    # 97 M … 1.03 B params with the official text widths (4096 / 768) and 256 text tokens.
    "paper": SweepConfig(
        dit_preset="hunyuan-13b",
        sizes=_ladder(
            (768, 2, 3),
            (768, 3, 6),
            (896, 3, 6),
            (1024, 3, 6),
            (1024, 4, 8),
            (1152, 4, 8),
            (1280, 5, 10),
            (1408, 5, 10),
            (1536, 6, 12),
        ),
        image_latent=(1, 32, 32),
        video_latent=(9, 32, 32),
        text_tokens=256,
        image_batch_size=256,
        video_batch_size=32,
        min_steps=500,
        train_preset="paper",
        lr=1e-4,
        warmup_steps=500,
    ),
}


@dataclass(frozen=True)
class PlannedRun:
    """One run of the sweep: a size trained for `steps` steps of `batch_size` samples at a budget.

    `tokens` (D) counts the video patch tokens seen; `flops` (C) is the compute it will spend,
    within a rounding step of `budget`.
    """

    family: str
    budget: float
    size: str
    dit_config: DiTConfig
    params: int
    video_tokens: int  # V per sample
    text_tokens: int  # L per sample
    flops_per_sample: int  # training (forward + backward) FLOPs of one sample
    batch_size: int
    steps: int

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_size * self.video_tokens

    @property
    def flops(self) -> float:
        return float(self.steps * self.batch_size * self.flops_per_sample)

    @property
    def flops_per_token(self) -> float:
        return self.flops_per_sample / self.video_tokens


@dataclass(frozen=True)
class SweepPlan:
    """The runs to train (by budget, then size) and the (budget, size) pairs left out, with reasons."""

    family: str
    runs: list[PlannedRun]
    skipped: list[str]

    @property
    def total_flops(self) -> float:
        return sum(r.flops for r in self.runs)


def plan_sweep(
    family: str, budgets: Sequence[float], config: SweepConfig, sizes: Sequence[str] | None = None
) -> SweepPlan:
    """Plan `family` (image|video) runs of every size (default: the whole ladder) at every budget (FLOPs).

    Raises ValueError for an unknown family or size, or a budget that is not a positive number.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown sweep family {family!r}; choose one of {', '.join(FAMILIES)}")
    if not budgets or any(not (math.isfinite(b) and b > 0) for b in budgets):
        raise ValueError(f"budgets {list(budgets)} must be one or more positive FLOP counts")
    specs = [config.size(name) for name in sizes] if sizes else list(config.sizes)
    base = DiTConfig.preset(config.dit_preset)
    latent = config.image_latent if family == "image" else config.video_latent
    batch = config.image_batch_size if family == "image" else config.video_batch_size
    runs, skipped = [], []
    for budget in sorted(budgets):
        for spec in specs:
            dit = spec.dit_config(base)
            video_tokens = video_token_count(dit, latent)
            per_sample = dit_flops(dit, video_tokens, config.text_tokens).training
            steps = round(budget / (batch * per_sample))
            if steps < config.min_steps:
                skipped.append(
                    f"{spec.name} at C = {budget:.3g}: {steps} step(s) of batch {batch}, "
                    f"fewer than {config.min_steps}"
                )
                continue
            runs.append(
                PlannedRun(
                    family=family,
                    budget=float(budget),
                    size=spec.name,
                    dit_config=dit,
                    params=dit_param_count(dit),
                    video_tokens=video_tokens,
                    text_tokens=config.text_tokens,
                    flops_per_sample=per_sample,
                    batch_size=batch,
                    steps=steps,
                )
            )
    return SweepPlan(family=family, runs=runs, skipped=skipped)


def bracket_runs(
    family: str,
    losses: Mapping[tuple[float, str], float],
    config: SweepConfig,
    allowed: Sequence[str] | None = None,
) -> SweepPlan:
    """The runs that would bracket each budget's IsoFLOP minimum, given the final `losses` of the
    runs so far ({(budget, size): loss}).

    Where a budget's lowest loss is at the smallest size it ran, the next smaller ladder size is
    planned at that budget; at the largest, the next larger one. A budget whose best size is between
    two others is bracketed already. A size must be in `allowed` when given (e.g. the sizes a video
    sweep has image checkpoints for) and get at least `min_steps` steps; otherwise the budget stays
    unbracketed and `skipped` says why. Sizes not in the ladder are ignored.
    """
    ladder = [spec.name for spec in config.sizes]
    by_budget: dict[float, dict[str, float]] = {}
    for (budget, size), loss in losses.items():
        if size in ladder and math.isfinite(loss):
            by_budget.setdefault(budget, {})[size] = loss
    runs: list[PlannedRun] = []
    skipped: list[str] = []
    for budget, sized in sorted(by_budget.items()):
        order = sorted(sized, key=ladder.index)
        best = min(order, key=lambda size: sized[size])
        sides = [s for s, end in ((-1, order[0]), (1, order[-1])) if best == end]
        if not sides:
            continue  # bracketed: the best size has a worse one on each side
        for side in sides:
            index = ladder.index(order[0] if side < 0 else order[-1]) + side
            if not 0 <= index < len(ladder):
                edge = "smallest" if side < 0 else "largest"
                skipped.append(f"C = {budget:.3g}: best at {best}, the ladder's {edge} size")
            elif allowed is not None and ladder[index] not in allowed:
                skipped.append(
                    f"C = {budget:.3g}: {ladder[index]} would bracket the minimum but is not allowed"
                )
            else:
                planned = plan_sweep(family, [budget], config, [ladder[index]])
                runs += planned.runs
                skipped += planned.skipped
    return SweepPlan(family=family, runs=runs, skipped=skipped)

"""Step caching for sampling (TeaCache-style): skip the transformer blocks when their input barely
changed since the last computed step, reusing that step's residual.

At each sampling step the DiT computes an indicator, the first dual-stream block's modulated input
(LayerNorm of the video tokens, shifted and scaled by the timestep/text vector). Its relative L1
change since the previous step,

    d = mean |m_t - m_{t-1}| / mean |m_{t-1}|,

is mapped through a polynomial `rescale` (fitted per model by `videofoundry calibrate-cache`: it
predicts the relative change of the blocks' output from d) and accumulated. While the accumulated
estimate stays below `threshold`, the blocks are skipped and the video tokens get the residual
(blocks' output minus input) of the last computed step; once it reaches the threshold, the blocks
run and the sum restarts at zero. The first and the last step always run. `threshold = 0` computes
every step (the output equals uncached sampling).

One `StepCache` serves one generation at a time: the sampler calls `start(num_steps)` first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

CALIBRATION_FORMAT = "videofoundry-step-cache/1"


@dataclass
class StepCacheStats:
    """What a generation did: steps computed and skipped, and the recorded change pairs
    (indicator change d, output change) of computed steps for calibration."""

    computed: int = 0
    skipped: int = 0
    pairs: list[tuple[float, float]] = field(default_factory=list)


class StepCache:
    """The cache state the DiT consults each forward (`HunyuanDiT.step_cache`).

    Args:
        threshold: accumulated rescaled change below which blocks are skipped (0 = never skip).
        rescale: polynomial coefficients, highest power first (numpy.polyval order), mapping the
            indicator's relative change to the output's; (1, 0) = identity.
    """

    def __init__(self, threshold: float, rescale: Sequence[float] = (1.0, 0.0)) -> None:
        if threshold < 0:
            raise ValueError(f"step cache threshold must be >= 0, got {threshold}")
        if not rescale:
            raise ValueError("step cache rescale needs at least one coefficient")
        self.threshold, self.rescale = float(threshold), [float(c) for c in rescale]
        self.stats = StepCacheStats()
        self._steps = 0
        self._step = 0
        self._accumulated = 0.0
        self._last_change = 0.0
        self._previous: torch.Tensor | None = None
        self._previous_out: torch.Tensor | None = None
        self.residual: torch.Tensor | None = None

    def start(self, num_steps: int) -> None:
        """Forget the last generation; the next `num_steps` forwards are one sampling run."""
        self._steps, self._step, self._accumulated = num_steps, 0, 0.0
        self._previous = self._previous_out = self.residual = None
        self.stats = StepCacheStats()

    def _polyval(self, x: float) -> float:
        out = 0.0
        for c in self.rescale:
            out = out * x + c
        return out

    def should_compute(self, indicator: torch.Tensor) -> bool:
        """Decide for this step from its indicator (any shape, the same every step)."""
        step, self._step = self._step, self._step + 1
        previous, self._previous = self._previous, indicator.detach()
        edge = step == 0 or step >= self._steps - 1 or previous is None or self.residual is None
        if previous is not None:
            change = float((indicator - previous).abs().mean() / previous.abs().mean().clamp(min=1e-12))
            self._last_change = change
            self._accumulated += max(self._polyval(change), 0.0)
        if edge or self._accumulated >= self.threshold:
            self._accumulated = 0.0
            self.stats.computed += 1
            return True
        self.stats.skipped += 1
        return False

    def store(self, block_input: torch.Tensor, block_output: torch.Tensor) -> None:
        """Keep a computed step's residual, and record (indicator change, output change) for calibration."""
        residual = (block_output - block_input).detach()
        if self._previous_out is not None:
            out_change = float(
                (residual - self._previous_out).abs().mean()
                / self._previous_out.abs().mean().clamp(min=1e-12)
            )
            self.stats.pairs.append((self._last_change, out_change))
        self.residual = self._previous_out = residual


def fit_rescale(pairs: Sequence[tuple[float, float]], degree: int = 4) -> list[float]:
    """Polynomial (highest power first) predicting the output change from the indicator change,
    least squares over calibration pairs of consecutive computed steps."""
    import numpy as np

    if len(pairs) <= degree:
        raise ValueError(f"{len(pairs)} calibration pairs cannot fit a degree-{degree} polynomial")
    x, y = np.array(pairs, dtype=np.float64).T
    return [float(c) for c in np.polyfit(x, y, degree)]


def write_calibration(path: str | Path, rescale: Sequence[float], info: dict[str, object]) -> Path:
    """Write a calibration file `read_calibration` (and ServingConfig.step_cache_calibration) reads."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"format": CALIBRATION_FORMAT, "rescale": list(rescale), **info}, indent=2))
    tmp.replace(out)
    return out


def read_calibration(path: str | Path) -> list[float]:
    """The rescale polynomial of a calibration file; ValueError naming the file if it is not one."""
    source = Path(path)
    try:
        data = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: cannot read a step-cache calibration ({error})") from error
    if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT or not data.get("rescale"):
        raise ValueError(f"{source}: not a step-cache calibration (want format {CALIBRATION_FORMAT!r})")
    return [float(c) for c in data["rescale"]]

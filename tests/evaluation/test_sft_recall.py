"""SFT recall (evaluation.sft_recall): PSNR of a generated video against the clip whose caption it got."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluation.sft_recall import RecallClip, RecallInputError, mean_psnr, sft_recall
from serving import ServingConfig, generate


def _clip(clip_id: str = "c0", frames: int = 5) -> RecallClip:
    rng = np.random.default_rng(0)
    return RecallClip(clip_id, "a red square", rng.integers(0, 256, (frames, 32, 48, 3), dtype=np.uint8))


def test_rows_per_clip_and_mode_with_known_psnr(tmp_path: Path) -> None:
    clip = _clip()
    offset = np.clip(clip.frames.astype(np.int16) + 10, 0, 255).astype(np.uint8)

    def generate_clip(c: RecallClip, mode: str) -> tuple[np.ndarray, Path]:
        if mode == "i2v":  # the pinned first frame is not scored: spoil it, keep the rest exact
            video = c.frames.copy()
            video[0] = 0
            return video, tmp_path / "i2v.mp4"
        return offset, tmp_path / "t2v.mp4"

    table = sft_recall("models:/m/1", [clip], generate_clip)
    rows = table.to_pylist()
    assert [(r["clip_id"], r["mode"], r["frames"], r["height"], r["width"]) for r in rows] == [
        ("c0", "t2v", 5, 32, 48),
        ("c0", "i2v", 5, 32, 48),
    ]
    mse = np.mean((offset.astype(np.float64) - clip.frames) ** 2)
    assert rows[0]["psnr_db"] == pytest.approx(10 * np.log10(255.0**2 / mse))
    assert rows[1]["psnr_db"] == float("inf")
    flat = np.broadcast_to(clip.frames.reshape(-1, 3).mean(axis=0), clip.frames.shape)
    baseline = 10 * np.log10(255.0**2 / np.mean((flat - clip.frames) ** 2))
    assert rows[0]["mean_colour_psnr_db"] == pytest.approx(baseline)  # the bar a blur already clears
    assert mean_psnr(table, "t2v") == pytest.approx(rows[0]["psnr_db"])
    assert mean_psnr(sft_recall("m", [clip], generate_clip, modes=("t2v",)), "i2v") is None
    assert rows[0]["psnr_vs_vae_roundtrip_db"] is None  # no round trip given: no DiT-only figure
    assert mean_psnr(table, "t2v", "psnr_vs_vae_roundtrip_db") is None


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_the_vae_round_trip_separates_the_dits_share_from_the_vaes(tmp_path: Path) -> None:
    """A generation equal to the round trip is perfect for the DiT however far the VAE is off."""
    clip = _clip()
    roundtrip = np.clip(clip.frames.astype(np.int16) - 40, 0, 255).astype(np.uint8)  # a poor VAE
    near = np.clip(roundtrip.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    with_roundtrip = RecallClip(clip.clip_id, clip.prompt, clip.frames, roundtrip)

    def generate_clip(c: RecallClip, mode: str) -> tuple[np.ndarray, Path]:
        return (roundtrip if mode == "t2v" else near), tmp_path / f"{mode}.mp4"

    rows = sft_recall("m", [with_roundtrip], generate_clip).to_pylist()
    assert rows[0]["psnr_vs_vae_roundtrip_db"] == float("inf")
    assert rows[0]["psnr_db"] == pytest.approx(_psnr(roundtrip, clip.frames))
    assert rows[0]["vae_roundtrip_psnr_db"] == pytest.approx(_psnr(roundtrip, clip.frames))
    # I2V scores from the second frame on, against the round trip's frames too.
    assert rows[1]["psnr_vs_vae_roundtrip_db"] == pytest.approx(_psnr(near[1:], roundtrip[1:]))
    assert rows[1]["vae_roundtrip_psnr_db"] == pytest.approx(_psnr(roundtrip[1:], clip.frames[1:]))
    with pytest.raises(RecallInputError, match="round trip must be"):
        RecallClip("c", "p", clip.frames, roundtrip[:3])


def test_bad_inputs_are_named() -> None:
    with pytest.raises(RecallInputError, match=r"\(F, H, W, 3\) uint8"):
        RecallClip("c", "p", np.zeros((5, 32, 32), dtype=np.uint8))
    with pytest.raises(RecallInputError, match="unknown recall modes"):
        sft_recall("m", [_clip()], lambda c, m: (c.frames, Path("x")), modes=("v2v",))
    with pytest.raises(RecallInputError, match="at least 2 frames"):
        sft_recall("m", [_clip(frames=1)], lambda c, m: (c.frames, Path("x")))
    with pytest.raises(RecallInputError, match="generated"):
        sft_recall("m", [_clip()], lambda c, m: (c.frames[:3], Path("x")))


def test_an_untrained_model_does_not_recall_the_clip(tmp_path: Path) -> None:
    """Through the real serving path: a random model's video is far from the clip."""
    clip = _clip()
    config = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))

    def generate_clip(c: RecallClip, mode: str) -> tuple[np.ndarray, Path]:
        frames, height, width = c.frames.shape[:3]
        video = generate(
            c.prompt, c.frames[0] if mode == "i2v" else None, model="tiny-random", config=config,
            height=height, width=width, frames=frames, steps=2, seed=0,
        )  # fmt: skip
        return video.frames, tmp_path / f"{mode}.mp4"

    table = sft_recall("tiny-random", [clip], generate_clip)
    assert all(np.isfinite(v) and v < 15.0 for v in table["psnr_db"].to_pylist())

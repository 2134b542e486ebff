"""Signals, dedup and tier rules on small constructed inputs (no corpus, no Ray): seconds in all."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
import torch

from curation.config import TIER_NAMES, CurationConfig, ProbeConfig
from curation.decode import BadVideoError, decode_for_analysis, probe_video
from curation.dedup import dedup_clips
from curation.democorpus.bad_inputs import BadInput
from curation.embedding import embed_frames, fold_batch_norms, load_embedder
from curation.scenes import clip_id_for
from curation.signals import border_box, motion_of, watermark_score
from curation.tiers import FILTERS, decide_tiers, funnel, tier_membership


def _photo() -> np.ndarray:
    from curation.democorpus.photo_pool import skimage_data_dir

    return cv2.cvtColor(cv2.imread(str(skimage_data_dir() / "chelsea.png")), cv2.COLOR_BGR2RGB)


def _sliding(photo: np.ndarray, n: int, step: float, height: int = 256) -> np.ndarray:
    """(n, height, w, 3): a window sliding right over the photo by `step` px per frame."""
    width = int(height * 16 / 9) // 2 * 2
    scale = height * 1.6 / photo.shape[0]
    big = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, -i * step], [0, 1, -0.2 * height]])
        frames.append(cv2.warpAffine(big, m, (width, height), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def test_embedding_weights_load_into_our_module_and_recognise_a_cat() -> None:
    x = torch.from_numpy(cv2.resize(_photo(), (224, 224))).float().div(255).permute(2, 0, 1)[None]
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1
    )
    with torch.inference_mode():
        logits = load_embedder().cpu()(x)
    assert int(logits.argmax()) in range(281, 286)  # ImageNet domestic cats (tabby … Egyptian)
    original = embed_frames([_photo()])
    resized = embed_frames([cv2.resize(_photo(), (226, 150), interpolation=cv2.INTER_AREA)])
    other = embed_frames([np.ascontiguousarray(_photo()[::-1, ::-1])])
    assert original.shape == (1280,) and np.linalg.norm(original) == pytest.approx(1.0, abs=1e-5)
    assert float(original @ resized) > 0.95 > float(original @ other)


def test_folded_batch_norms_give_the_same_features_with_no_batch_norm_left() -> None:
    from model.mobilenet import load_mobilenet_v2, normalize_imagenet

    plain = load_mobilenet_v2().eval()
    x = normalize_imagenet(torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    with torch.inference_mode():
        before = plain.pooled_features(x)
        folded = fold_batch_norms(plain)
        after = folded.pooled_features(x)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in load_embedder().modules())
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batch_norms(load_mobilenet_v2().train())


def test_motion_is_measured_in_pixels_per_frame_at_256p() -> None:
    frames = _sliding(_photo(), 8, step=2.0)
    box = (0, 0, frames.shape[2], frames.shape[1])
    assert motion_of(frames, 0, 8, pairs=4, box=box).mean == pytest.approx(2.0, rel=0.2)
    still = np.repeat(frames[:1], 8, axis=0)
    assert motion_of(still, 0, 8, pairs=4, box=box).mean < 0.05


def test_borders_and_watermark_on_constructed_frames() -> None:
    frames = _sliding(_photo(), 24, step=3.0)
    framed = np.zeros_like(frames)
    framed[:, 30:-30] = frames[:, 30:-30]  # letterbox bars of 30 rows
    assert border_box(framed, list(range(0, 24, 4)), 24.0, 8.0) == (
        0,
        30,
        frames.shape[2],
        frames.shape[1] - 30,
    )
    box = (0, 0, frames.shape[2], frames.shape[1])
    clean, _ = watermark_score(frames, list(range(0, 24, 2)), box, 120.0, 0.8, motion=3.0)
    marked = frames.copy()
    for frame in marked:
        overlay = frame.copy()
        cv2.circle(overlay, (400, 40), 18, (255, 255, 255), 4)
        cv2.rectangle(overlay, (385, 30), (415, 50), (255, 255, 255), 2)
        frame[:] = cv2.addWeighted(overlay, 0.7, frame, 0.3, 0)
    score, corner = watermark_score(marked, list(range(0, 24, 2)), box, 120.0, 0.8, motion=3.0)
    assert clean < 0.7 <= score and corner == "top-right"
    assert watermark_score(marked, list(range(0, 24, 2)), box, 120.0, 0.8, motion=0.01) == (0.0, None)


def test_probe_names_stage_and_reason(bad_inputs_dir: tuple[Path, dict[str, BadInput]]) -> None:
    folder, _ = bad_inputs_dir
    with pytest.raises(BadVideoError, match="empty file") as error:
        probe_video(folder / "zero_byte.mp4", ProbeConfig())
    assert error.value.stage == "probe"
    with pytest.raises(BadVideoError, match="above the cap"):
        probe_video(folder / "huge_5120x2880.mp4", ProbeConfig())
    assert probe_video(folder / "huge_5120x2880.mp4", ProbeConfig(max_frame_pixels=20_000_000)).width == 5120
    info = probe_video(folder / "rotated_90.mp4", ProbeConfig())
    video = decode_for_analysis(info, 128, max_frames=1000)
    assert (video.width, video.height) == (256, 320) and video.small.shape[1:3] == (128, 102)
    vfr = decode_for_analysis(
        probe_video(folder / "variable_frame_rate.mp4", ProbeConfig()), 64, max_frames=1000
    )
    assert set(np.round(np.diff(vfr.times), 3)) == {0.02, 0.04}


def _signal_row(clip_id: str, vector: np.ndarray, **overrides: float) -> dict:
    row = {
        "clip_id": clip_id,
        "width": 1280,
        "height": 720,
        "fps": 25.0,
        "duration_s": 3.0,
        "motion_mean": 1.5,
        "motion_p95": 3.0,
        "sharpness": 500.0,
        "brisque": 30.0,
        "aesthetic": 7.0,
        "aesthetic_model": "test",
        "text_area": 0.0,
        "watermark": 0.0,
        "watermark_corner": None,
        "border_x0": 0,
        "border_y0": 0,
        "border_x1": 1280,
        "border_y1": 720,
        "border_ratio": 0.0,
        "phash": f"{abs(hash(clip_id)) % 16**16:016x}",
        "embedding": (vector / np.linalg.norm(vector)).astype(np.float32).tolist(),
    }
    row.update(overrides)
    return row


def test_dedup_keeps_the_best_of_a_group_and_never_merges_distinct_clips() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 64))
    rows = [
        _signal_row("a", base[0], aesthetic=5.0),
        _signal_row("b", base[0] + 0.05 * rng.normal(size=64), aesthetic=8.0),  # near copy, prettier
        _signal_row("c", base[1]),
        _signal_row("d", base[2]),
        _signal_row("e", base[3]),
    ]
    config = CurationConfig.preset("tiny").dedup
    table = dedup_clips(pa.Table.from_pylist(rows), config).to_pylist()
    by_id = {r["clip_id"]: r for r in table}
    assert by_id["b"]["keep"] and not by_id["a"]["keep"] and by_id["a"]["duplicate_of"] == "b"
    assert all(by_id[c]["keep"] and by_id[c]["group_size"] == 1 for c in "cde")
    weights = [r["balance_weight"] for r in table if r["keep"]]
    assert np.mean(weights) == pytest.approx(1.0)


def test_tiers_nest_and_the_first_failing_filter_decides() -> None:
    vector = np.ones(8)
    rows = [
        _signal_row("good", vector),
        _signal_row("small", vector, height=360, width=640, border_x1=640, border_y1=360),
        _signal_row("static", vector, motion_mean=0.01, motion_p95=0.02),
        _signal_row("texty", vector, text_area=0.2, watermark=0.9),  # text is checked before watermark
    ]
    tiers = CurationConfig.preset("tiny").tiers
    decisions = decide_tiers(pa.Table.from_pylist(rows), {r["clip_id"] for r in rows}, tiers)
    membership = {r["clip_id"]: r for r in tier_membership(decisions).to_pylist()}
    assert membership["good"]["highest_tier"] == "720p"
    assert membership["small"]["highest_tier"] == "360p"
    assert (membership["small"]["failed_tier"], membership["small"]["failed_filter"]) == (
        "540p",
        "resolution",
    )
    assert "static" not in membership and "texty" not in membership
    decisive = {(r["clip_id"], r["tier"]): r["filter"] for r in decisions.to_pylist() if r["decisive"]}
    assert decisive[("static", "256p")] == "motion_min" and decisive[("texty", "256p")] == "text"
    assert {r["tier"] for r in decisions.to_pylist() if r["clip_id"] == "static"} == {"256p"}
    steps = funnel(5, 4, decisions)
    assert steps[:2] == [("clips", 5), ("dedup", 4)]
    assert steps[-1] == ("720p:black_border", 1)
    assert len(steps) == 2 + len(TIER_NAMES) * len(FILTERS)


def test_clip_ids_are_content_addressed_and_presets_differ() -> None:
    assert clip_id_for("ab" * 32, 0, 75) == clip_id_for("ab" * 32, 0, 75) != clip_id_for("ab" * 32, 0, 76)
    tiny, paper = CurationConfig.preset("tiny"), CurationConfig.preset("paper")
    assert paper.tiers["720p"].min_duration_s > tiny.tiers["720p"].min_duration_s
    assert [tiny.tiers[n].min_short_side for n in TIER_NAMES] == [256, 360, 540, 720]
    with pytest.raises(ValueError, match="unknown CurationConfig preset 'huge'; choose one of tiny, paper"):
        CurationConfig.preset("huge")


def test_sft_candidates_reach_down_the_tiers_until_there_are_enough() -> None:
    """One 720p clip, none at 540p, three at 360p: `min_candidates` 1 keeps the top tier alone; 3 admits
    360p too (540p is empty), ranked by aesthetic × motion across both; 256p never joins then."""
    from curation.config import SftConfig
    from curation.tiers import sft_candidates

    highest = {"top": "720p", "a": "360p", "b": "360p", "c": "360p", "low": "256p"}
    membership = pa.table({"clip_id": list(highest), "highest_tier": list(highest.values())})
    aesthetic = {"top": 5.0, "a": 8.0, "b": 6.0, "c": 7.0, "low": 9.0}
    signals = pa.table(
        {"clip_id": list(aesthetic), "aesthetic": list(aesthetic.values()), "motion_mean": [2.0] * 5}
    )
    assert sft_candidates(signals, membership, SftConfig(min_candidates=1)).column("clip_id").to_pylist() == [
        "top"
    ]
    several = sft_candidates(signals, membership, SftConfig(min_candidates=3))
    assert several.column("clip_id").to_pylist() == ["a", "c", "b", "top"]
    assert several.column("rank").to_pylist() == [1, 2, 3, 4]
    capped = sft_candidates(signals, membership, SftConfig(min_candidates=3, max_candidates=2))
    assert capped.column("clip_id").to_pylist() == ["a", "c"]
    everything = sft_candidates(signals, membership, SftConfig(min_candidates=99))
    assert set(everything.column("clip_id").to_pylist()) == set(highest)

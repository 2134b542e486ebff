"""The real held-out set: its manifest, deterministic derivation, and the signals' decisions on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from curation.config import CurationConfig
from curation.heldout.build import build_heldout, load_manifest, render_item, source_path
from curation.heldout.score import item_signals, predictions, score_heldout
from curation.ocr import lower_band_light_text, static_overlay_image
from curation.signals import sample_indices
from curation.tesseract import engine
from media.video import read_clip

CONFIG = CurationConfig.preset("tiny")


def _item(name: str):  # type: ignore[no-untyped-def]
    return next(item for item in load_manifest() if item.name == name)


def test_manifest_halves_every_signal_and_names_real_sources() -> None:
    items = load_manifest()
    for split in ("tune", "report"):
        half = [item for item in items if item.split == split]
        assert sum(bool(item.labels.cuts) for item in half) >= 2
        for signal in ("static", "text", "watermark", "border"):
            values = [getattr(item.labels, signal) for item in half]
            assert values.count(True) >= 2 and values.count(False) >= 2, (split, signal)
    for item in items:
        assert source_path(item.source).is_file()
        assert item.provenance.startswith(("hand-labelled", "static by construction"))
    # No source frame is in both halves: tuning never sees a report item's footage.
    frames = {"tune": set(), "report": set()}  # type: dict[str, set[tuple[str, int]]]
    for item in items:
        if item.op == "segment":
            assert item.end is not None
            frames[item.split] |= {(item.source, f) for f in range(item.start, item.end)}
        else:
            frames[item.split].add((item.source, -1))
    assert not frames["tune"] & frames["report"]


def test_items_render_and_encode_deterministically(tmp_path: Path) -> None:
    still = _item("still_aero_a").model_copy(update={"frames": 8})
    logo = _item("bikes_boxed_b").model_copy(update={"end": 150})  # 13 frames: the test is about bytes
    first, fps = render_item(still)
    again, _ = render_item(still)
    assert fps == 25.0 and first.shape[0] == 8 and max(first.shape[1:3]) <= 854
    assert np.array_equal(first, again)
    assert np.abs(first[1].astype(int) - first[0].astype(int)).mean() > 1.0  # fresh noise per frame
    overlaid, _ = render_item(logo)
    plain, _ = render_item(logo.model_copy(update={"overlays": []}))
    changed = np.nonzero((overlaid != plain).any(axis=(0, 3)))
    assert changed[0].max() < 0.3 * plain.shape[1] and changed[1].max() < 0.3 * plain.shape[2]  # top-left
    paths = [build_heldout(tmp_path / run, [logo])[logo.name] for run in ("a", "b")]
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    assert len(digests) == 1


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("still_storm_a", {"static": True}),  # a dark photo + sensor noise σ 4: once scored 0.22
        ("city_tilt_b", {"static": False, "watermark": False}),  # a real slow tilt up a tower block
        ("megamind_station_b", {"static": False, "watermark": True}),  # semi-transparent station logo
        ("bikes_boxed_b", {"watermark": True}),  # 22 px text in a box
        ("city_caption_b", {"static": False, "watermark": False}),  # lower-third caption: no logo
        # Big Buck Bunny on a locked-off set: the character moves, the frame mean reads 0.12 px/frame
        ("bunny_b", {"static": False, "watermark": False, "border": False}),
        ("still_green_b", {"static": True}),  # a flat wallpaper + sensor noise σ 4
        ("world_spin_b", {"border": False}),  # black space around the globe is no pillarbox
        ("megamind_pillarbox_b", {"border": True}),  # a dark scene between real bars
        ("bikes_cuts_b", {"watermark": False}),  # a still door panel mid-frame behind a passer-by
    ],
)
def test_cheap_signals_decide_real_items(tmp_path: Path, name: str, expected: dict[str, bool]) -> None:
    item = _item(name)
    if item.op == "still":
        item = item.model_copy(update={"frames": 24})  # as still in 24 frames as in 50, and faster
    row = item_signals(build_heldout(tmp_path, [item])[name], CONFIG, cheap_only=True)
    decided = predictions(row, CONFIG)
    assert {key: decided[key] for key in expected} == expected, row


@pytest.mark.slow
def test_lower_third_caption_is_text_not_watermark(tmp_path: Path) -> None:
    item = _item("world_caption_a")
    row = item_signals(build_heldout(tmp_path, [item])[item.name], CONFIG)
    assert predictions(row, CONFIG) == {"static": False, "text": True, "watermark": False, "border": False}
    report = score_heldout([item], {item.name: row}, CONFIG, "tune")
    assert report.accuracy == {"static": 1.0, "text": 1.0, "watermark": 1.0, "border": 1.0}
    assert report.misses == []
    assert np.isnan(score_heldout([item], {item.name: row}, CONFIG, "report").accuracy["text"])


@pytest.mark.slow
def test_lower_third_over_a_busy_scene_is_read_from_its_plate(tmp_path: Path) -> None:
    # A night tower block shows through the caption plate: the whole-image read finds no word.
    item = _item("city_caption_b")
    path = build_heldout(tmp_path, [item])[item.name]
    frames = read_clip(path)
    picks = [frames[i] for i in sample_indices(0, len(frames), CONFIG.signals.ocr_frames)]
    image, separated = static_overlay_image(picks, CONFIG.signals.ocr_height)
    assert separated
    whole = [w.text for w in engine().words(image) if w.confidence >= CONFIG.signals.ocr_min_confidence]
    assert "City" not in whole
    band = [w.text for w in engine().words(lower_band_light_text(image))]
    assert {"City", "night", "Downtown,"} <= set(band)
    row = item_signals(path, CONFIG)
    assert predictions(row, CONFIG) == {"static": False, "text": True, "watermark": False, "border": False}

"""Structured captions: schema rules, the offline facts backend, ground truth, the table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
from pydantic import ValidationError

from curation.captions import (
    CAPTIONS_SCHEMA,
    CaptionConfig,
    ClipInput,
    StructuredCaption,
    build_backend,
    caption_clips,
    caption_problems,
    records_to_table,
)
from curation.captions.backends.base import camera_fields
from curation.captions.backends.ground_truth import GroundTruthBackend
from curation.captions.backends.offline import phrase_facts
from curation.captions.facts import colour_temperature, measure_facts
from curation.captions.imagenet import imagenet_class_names
from curation.democorpus.labels import CorpusLabels, ShotLabel, VideoLabel
from media.video import write_video

FIELDS = {
    "short_description": "A cat sits on a sofa.",
    "dense_description": "A ginger cat sits on a sofa and looks around.",
    "background": "a living room",
    "style": "close-up",
    "lighting": "warm lamp light",
    "atmosphere": "cosy",
}


def _caption(**extra) -> StructuredCaption:
    provenance = {name: "test" for name in FIELDS}
    if extra.get("camera_movement"):
        provenance["camera_movement"] = "camera-motion-classifier"
    return StructuredCaption(**FIELDS, provenance=provenance, **extra)


def _write(path: Path, frames: list[np.ndarray], fps: int = 24) -> Path:
    write_video(path, frames, fps)
    return path


def _photo(name: str) -> np.ndarray:
    image = cv2.imread(str(Path(skimage.__file__).parent / "data" / name), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def test_schema_rejects_empty_fields_and_missing_provenance():
    assert _caption(camera_movement="pan left", camera_confidence=0.9).camera_movement == "pan left"
    with pytest.raises(ValidationError, match="at least 1 character"):
        StructuredCaption(**{**FIELDS, "lighting": "   "}, provenance={n: "t" for n in FIELDS})
    with pytest.raises(ValidationError, match="does not name the backend"):
        StructuredCaption(**FIELDS, provenance={"short_description": "t"})
    with pytest.raises(ValidationError, match="camera_movement"):
        _caption(camera_movement="dolly zoom")
    with pytest.raises(ValidationError, match="does not name the backend of \\['camera_movement'\\]"):
        StructuredCaption(**FIELDS, camera_movement="zoom in", provenance={n: "t" for n in FIELDS})
    round_trip = StructuredCaption.model_validate_json(_caption().to_json())
    assert round_trip == _caption()


def test_presets():
    assert CaptionConfig.preset("tiny").backend == "offline"
    assert CaptionConfig.preset("paper").backend == "endpoint"
    assert CaptionConfig.preset("paper").n_keyframes == 4
    with pytest.raises(ValueError, match="unknown CaptionConfig preset 'huge'; choose one of tiny, paper"):
        CaptionConfig.preset("huge")


def test_imagenet_names_ship_on_disk():
    names = imagenet_class_names()
    assert len(names) == 1000 and names[0] == "tench" and names[281] == "tabby cat"


def test_colour_temperature_orders_warm_and_cool():
    warm = np.full((8, 8, 3), (255, 170, 90), np.uint8)
    cool = np.full((8, 8, 3), (170, 200, 255), np.uint8)
    grey = np.full((8, 8, 3), 128, np.uint8)
    assert colour_temperature([warm]) < 4000 < colour_temperature([grey]) < 7000 < colour_temperature([cool])
    assert colour_temperature([grey]) == pytest.approx(6500, rel=0.03)  # sRGB grey is D65


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, ClipInput]:
    folder = tmp_path_factory.mktemp("clips")
    astronaut = cv2.resize(_photo("astronaut.png"), (320, 320))[:240]  # a face, static camera
    dark = (_photo("coffee.png")[:240, :320] * 0.25).astype(np.uint8)
    text = np.full((240, 320, 3), 235, np.uint8)
    cv2.putText(text, "GARDEN", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (10, 10, 10), 5)
    cv2.putText(text, "MARKET", (20, 190), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (10, 10, 10), 5)
    return {
        "face": ClipInput("face", _write(folder / "face.mp4", [astronaut] * 12)),
        "dark": ClipInput("dark", _write(folder / "dark.mp4", [dark] * 12)),
        "text": ClipInput("text", _write(folder / "text.mp4", [text] * 12)),
    }


def test_offline_backend_says_what_it_measured(clips):
    config = CaptionConfig.preset("tiny")
    records = caption_clips(clips.values(), build_backend(config), progress=False)
    by_id = {r.clip_id: r for r in records}
    assert all(r.status == "ok" for r in records)
    face = by_id["face"].caption
    assert face is not None
    assert "1 frontal face is visible" in face.dense_description
    assert face.camera_movement == "static shot"
    assert face.provenance["camera_movement"] == "camera-motion-classifier"
    assert set(face.provenance.values()) == {"offline-facts", "camera-motion-classifier"}
    assert "medium shot" in face.style or "close-up" in face.style
    dark = by_id["dark"].caption
    assert dark is not None and dark.lighting.startswith("dark")
    text = by_id["text"].caption
    assert text is not None
    assert "GARDEN" in text.dense_description and "MARKET" in text.dense_description
    assert "with on-screen text" in text.short_description
    # Nothing unmeasured is invented: no face on the text card, no ImageNet claim below threshold.
    assert "face" not in text.dense_description
    table = records_to_table(records)
    assert table.schema.equals(CAPTIONS_SCHEMA)
    assert caption_problems(table, ["face", "dark", "text"]) == []
    assert caption_problems(table, ["face", "missing"]) == ["missing: no caption row"]


def test_unconfident_camera_label_stays_out(clips):
    config = CaptionConfig.preset("tiny", ocr=False)
    facts, _ = measure_facts(clips["dark"], config)
    assert facts.camera is not None and facts.camera.label == "static shot"
    unsure = dataclasses.replace(
        facts, camera=dataclasses.replace(facts.camera, confidence=0.4), camera_confident=False
    )
    assert camera_fields(unsure.camera, config.camera_min_confidence) == ({}, {})
    phrases = phrase_facts(unsure)
    assert "not determined" in phrases["dense_description"]
    assert "static" not in phrases["short_description"] and "static" not in phrases["style"]


def test_unreadable_clip_is_a_failed_record(tmp_path):
    record = build_backend(CaptionConfig.preset("tiny")).caption(ClipInput("gone", tmp_path / "gone.mp4"))
    assert (
        record.status == "failed"
        and record.caption is None
        and "gone.mp4: no such video file" in (record.error or "")
    )


def test_ground_truth_backend_fills_known_fields_and_keeps_provenance(clips):
    shot = dict(
        camera_motion="zoom out",
        static=False,
        slow_motion=False,
        motion_px_per_frame_256p=1.5,
        text_area_ratio=0.0,
        text_heavy=False,
        watermark=True,
        border="letterbox",
        content_box=(0, 20, 320, 220),
        border_ratio=0.17,
        source_image="skimage/astronaut.png",
    )

    def video(video_id: str, kind: str, shot: ShotLabel) -> VideoLabel:
        return VideoLabel(
            video_id=video_id,
            file=f"{video_id}.mp4",
            kind=kind,
            fps=24.0,
            width=320,
            height=240,
            frame_count=12,
            cuts=[],
            cuts_known=kind != "real",
            shots=[shot],
        )

    labels = CorpusLabels(
        seed=0,
        profile="tiny",
        definitions={},
        videos=[
            video(
                "007_single", "single", ShotLabel(shot_id="007_single#0", start_frame=0, end_frame=12, **shot)
            ),
            video("024_real_vtest", "real", ShotLabel.unknown("024_real_vtest#0", 0, 12)),
        ],
    )
    config = CaptionConfig.preset("tiny", ocr=False)
    backend = GroundTruthBackend(labels, fallback=build_backend(config))
    face = clips["face"]
    corpus_clip = ClipInput(
        "c1", face.video, source_file="raw/007_single.mp4", source_start_frame=0, source_end_frame=12
    )
    record = backend.caption(corpus_clip)
    caption = record.caption
    assert caption is not None and record.backend == "demo-ground-truth"
    assert caption.camera_movement == "zoom out" and caption.camera_confidence == 1.0
    assert caption.provenance["camera_movement"] == "demo-ground-truth"
    assert caption.provenance["lighting"] == "offline-facts"
    assert "astronaut" in caption.short_description and "letterbox" in caption.style
    assert "logo" in caption.dense_description
    real = ClipInput(
        "r", face.video, source_file="024_real_vtest.mp4", source_start_frame=0, source_end_frame=12
    )
    assert backend.shot_for(real) is None  # real footage: the labels know nothing of its content
    other = backend.caption(face)  # not a corpus clip: the fallback's caption, unchanged provenance
    assert other.caption is not None and "demo-ground-truth" not in other.caption.provenance.values()
    assert (
        json.loads(records_to_table([record]).column("caption_json")[0].as_py())["camera_movement"]
        == "zoom out"
    )


def test_caption_cli_prints_the_record(clips):
    from typer.testing import CliRunner

    from orchestration.cli import app

    video = str(clips["face"].video)
    result = CliRunner().invoke(app, ["caption", video, "--prompt-seed", "3"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["status"] == "ok"
    assert payload["caption"]["short_description"].startswith("A static shot of")
    assert payload["training_prompt"]
    failed = CliRunner().invoke(
        app, ["caption", video, "--backend", "endpoint", "--base-url", "http://127.0.0.1:9/v1"]
    )
    assert failed.exit_code == 1  # the record is printed; the failure is a runtime one
    assert json.loads(failed.stdout)["status"] == "failed"
    assert failed.stderr.startswith(f"error: captioning {video} failed: ")
    bad = CliRunner().invoke(app, ["caption", video, "--backend", "gpt"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --backend must be")

"""In-process tesseract (`curation.tesseract`): the same words as the `tesseract` command, OpenMP
kept to one thread while it recognises, and grey uint8 input only."""

from __future__ import annotations

import ctypes

import cv2
import numpy as np
import pytesseract
import pytest

from curation.tesseract import TesseractEngine, _SerialOpenMP, engine


def _caption_image() -> np.ndarray:
    """480×854 grey: a blurred noise picture with two lines of white outlined captions."""
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(60, 200, (480, 854), dtype=np.uint8), (7, 7), 2)
    for text, y in (("STORY DESERT PAPER", 360), ("planet harbor window", 420)):
        for colour, thickness in ((0, 6), (255, 2)):
            cv2.putText(image, text, (60, y), cv2.FONT_HERSHEY_SIMPLEX, 1.4, colour, thickness, cv2.LINE_AA)
    return image


def test_the_engine_reads_the_words_and_boxes_of_the_tesseract_command() -> None:
    image = _caption_image()
    words = engine().words(image)
    read = {w.text.upper() for w in words if w.confidence >= 70}
    assert {"STORY", "DESERT", "PAPER", "PLANET", "HARBOR", "WINDOW"} <= read
    # The command through pytesseract: same words, boxes, line keys and (integer) confidences.
    data = pytesseract.image_to_data(image, config="--psm 11 --oem 1", output_type=pytesseract.Output.DICT)
    expected = [
        (
            data["text"][i],
            int(float(data["conf"][i])),
            (data["block_num"][i], data["par_num"][i], data["line_num"][i]),
            (
                data["left"][i],
                data["top"][i],
                data["left"][i] + data["width"][i],
                data["top"][i] + data["height"][i],
            ),
        )
        for i in range(len(data["text"]))
        if data["level"][i] == 5
    ]
    assert [(w.text, int(w.confidence), w.line, w.box) for w in words] == expected
    # The engine is reused: a second read of the same image gives the same words.
    assert engine() is engine()
    assert engine().words(image) == words


def test_an_empty_picture_has_no_words_and_colour_input_is_refused() -> None:
    assert engine().words(np.full((200, 300), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="grey uint8"):
        engine().words(np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(ValueError, match="grey uint8"):
        engine().words(np.zeros((40, 40), np.float32))


def test_openmp_regions_run_single_threaded_during_recognition_and_the_setting_comes_back() -> None:
    gomp = ctypes.CDLL("libgomp.so.1")
    gomp.omp_set_max_active_levels(3)
    serial = _SerialOpenMP()
    with serial:
        assert gomp.omp_get_max_active_levels() == 0  # every parallel region: one thread
    assert gomp.omp_get_max_active_levels() == 3
    engine().words(_caption_image())
    assert gomp.omp_get_max_active_levels() == 3


def test_a_missing_language_is_an_actionable_error() -> None:
    from curation.tesseract import OcrUnavailableError

    with pytest.raises(OcrUnavailableError, match="tesseract-ocr-xx"):
        TesseractEngine("xx")

"""Tesseract OCR in-process through its C API (`libtesseract`), one loaded engine per process.

The `tesseract` command (what pytesseract runs) loads its LSTM model on every call: about 0.1
CPU-second, half of a typical clip's OCR on the demo corpus. A curation worker reads many clips,
so it keeps one engine with the model loaded and hands it grey images from memory (no PNG
written and read back). Recognition is the same as the command's for the same settings
(`--psm 11 --oem 1`: sparse text, LSTM only; `tests/curation/test_tesseract.py` compares them).

Library: Debian `libtesseract5` (a dependency of `tesseract-ocr`), language data from
`tesseract-ocr-eng`. Tesseract's LSTM opens OpenMP teams of 4 threads per time step; on a worker
that already runs one task per core those threads spin against each other (the same 36 clips took
8.3 CPU-s instead of 2.8). `OMP_THREAD_LIMIT` cannot stop it in-process: torch has already started
the shared `libgomp.so.1` by then. So each recognition runs with OpenMP's max-active-levels at 0,
which makes every parallel region a single thread, and restores it after.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from dataclasses import dataclass

import numpy as np

PSM_SPARSE_TEXT = 11
"""Page segmentation: find as much text as possible, in no particular order (`--psm 11`)."""
OEM_LSTM_ONLY = 1
"""Engine: the LSTM recogniser only (`--oem 1`)."""
L_SEVERITY_NONE = 6
"""Leptonica's message level that prints nothing."""


class OcrUnavailableError(RuntimeError):
    """libtesseract or its English language data is not installed."""


@dataclass(frozen=True)
class Word:
    """One recognised word: its text, confidence (0-100), line key and box in image pixels."""

    text: str
    confidence: float
    line: tuple[int, int, int]  # (block, paragraph, line) numbers: the words of one text line share it
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), x1/y1 exclusive


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("tesseract")
    if name is None:
        raise OcrUnavailableError(
            "libtesseract not found; `apt-get install tesseract-ocr tesseract-ocr-eng` (or `make setup`)"
        )
    lib = ctypes.CDLL(name)
    leptonica = ctypes.util.find_library("lept")
    if leptonica is not None:  # its image notes ("box outside rectangle") went to the command's stderr
        ctypes.CDLL(leptonica).setMsgSeverity(L_SEVERITY_NONE)
    lib.TessBaseAPICreate.restype = ctypes.c_void_p
    lib.TessBaseAPIInit2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.TessBaseAPIInit2.restype = ctypes.c_int
    lib.TessBaseAPISetVariable.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    lib.TessBaseAPISetVariable.restype = ctypes.c_int
    lib.TessBaseAPISetPageSegMode.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.TessBaseAPISetImage.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.TessBaseAPIRecognize.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.TessBaseAPIRecognize.restype = ctypes.c_int
    lib.TessBaseAPIGetTsvText.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.TessBaseAPIGetTsvText.restype = ctypes.c_void_p  # freed with TessDeleteText
    lib.TessDeleteText.argtypes = [ctypes.c_void_p]
    lib.TessBaseAPIClear.argtypes = [ctypes.c_void_p]
    return lib


class _SerialOpenMP:
    """Context: OpenMP parallel regions opened inside run on one thread (max-active-levels 0)."""

    def __init__(self) -> None:
        try:  # the libgomp.so.1 libtesseract is bound to (torch's copy when torch came first)
            self._gomp: ctypes.CDLL | None = ctypes.CDLL("libgomp.so.1")
        except OSError:  # a tesseract built without OpenMP
            self._gomp = None
        self._levels = 0

    def __enter__(self) -> None:
        if self._gomp is not None:
            self._levels = self._gomp.omp_get_max_active_levels()
            self._gomp.omp_set_max_active_levels(0)

    def __exit__(self, *exc: object) -> None:
        if self._gomp is not None:
            self._gomp.omp_set_max_active_levels(self._levels)


class TesseractEngine:
    """A loaded tesseract (`language`, sparse-text segmentation, LSTM) that reads grey images.

    Not reentrant: calls on one engine are serialised by a lock. Use `engine()` for the process's
    shared one.
    """

    def __init__(self, language: str = "eng") -> None:
        self._lib = _load_library()
        self._handle = self._lib.TessBaseAPICreate()
        if self._lib.TessBaseAPIInit2(self._handle, None, language.encode(), OEM_LSTM_ONLY) != 0:
            raise OcrUnavailableError(
                f"tesseract could not load language {language!r}; `apt-get install tesseract-ocr-{language}`"
            )
        # Its per-image notes ("Estimating resolution as …") would go to stderr once per clip.
        self._lib.TessBaseAPISetVariable(self._handle, b"debug_file", b"/dev/null")
        self._lib.TessBaseAPISetPageSegMode(self._handle, PSM_SPARSE_TEXT)
        self._lock = threading.Lock()
        self._serial = _SerialOpenMP()

    def words(self, image: np.ndarray) -> list[Word]:
        """Every word tesseract finds in `image`, a grey (H, W) uint8 array, in reading order."""
        if image.ndim != 2 or image.dtype != np.uint8:
            raise ValueError(f"OCR reads grey uint8 (H, W) images, got {image.dtype} {image.shape}")
        pixels = np.ascontiguousarray(image)
        height, width = pixels.shape
        with self._lock:
            self._lib.TessBaseAPISetImage(self._handle, pixels.ctypes.data, width, height, 1, width)
            with self._serial:
                failed = self._lib.TessBaseAPIRecognize(self._handle, None) != 0
            if failed:
                raise RuntimeError(f"tesseract failed to recognise a {width}×{height} image")
            text = self._lib.TessBaseAPIGetTsvText(self._handle, 0)
            try:
                tsv = ctypes.string_at(text).decode("utf-8", errors="replace") if text else ""
            finally:
                if text:
                    self._lib.TessDeleteText(text)
                self._lib.TessBaseAPIClear(self._handle)
        return _parse_tsv(tsv)


def _parse_tsv(tsv: str) -> list[Word]:
    """Word rows (level 5) of tesseract's TSV: level, page, block, par, line, word, left, top,
    width, height, conf, text."""
    words = []
    for line in tsv.splitlines():
        fields = line.split("\t")
        if len(fields) < 12 or fields[0] != "5":
            continue
        block, paragraph, text_line = int(fields[2]), int(fields[3]), int(fields[4])
        left, top, width, height = (int(v) for v in fields[6:10])
        words.append(
            Word(
                text=fields[11],
                confidence=float(fields[10]),
                line=(block, paragraph, text_line),
                box=(left, top, left + width, top + height),
            )
        )
    return words


_ENGINE: TesseractEngine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> TesseractEngine:
    """The process's English engine, loaded on first use (the model load is paid once)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = TesseractEngine("eng")
        return _ENGINE

"""Technical quality (OpenCV BRISQUE) and the aesthetic score (a named stand-in until a model is given).

Shared by curation (per-clip signals) and evaluation (video metrics); it sits in the bottom layer
`media/` because both may import it and it imports nothing of ours (OpenCV, NumPy; torch only when a
TorchScript aesthetic model is given).

BRISQUE uses the LIVE model files of Debian's `opencv-data` (`/usr/share/opencv4/quality/`);
lower is better (≈ 0 pristine … 100 bad). No aesthetic model ships offline, so the default
`HeuristicAestheticStandIn` is an honest hand-made proxy (colourfulness, contrast, exposure,
sharpness) and says so in its `name`, which is written next to every score. Give a TorchScript
model with `SignalConfig.aesthetic_model` to replace it.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

BRISQUE_DIR = Path("/usr/share/opencv4/quality")


class QualityModelMissingError(FileNotFoundError):
    """A quality model file is missing; the message names the package or path to fix it."""


@functools.cache
def _brisque_paths() -> tuple[str, str]:
    model, ranges = BRISQUE_DIR / "brisque_model_live.yml", BRISQUE_DIR / "brisque_range_live.yml"
    if not (model.is_file() and ranges.is_file()):
        raise QualityModelMissingError(
            f"BRISQUE models not found in {BRISQUE_DIR}; `apt-get install opencv-data`"
        )
    return str(model), str(ranges)


@functools.cache
def _brisque_model() -> tuple[cv2.quality.QualityBRISQUE, threading.Lock]:  # type: ignore[name-defined]
    """The BRISQUE scorer with its SVM loaded once per process (`QualityBRISQUE_compute` parses the
    model's YAML on every call: ~20 ms, a third of a 720p frame's score), and a lock for it."""
    model, ranges = _brisque_paths()
    return cv2.quality.QualityBRISQUE_create(model, ranges), threading.Lock()  # type: ignore[attr-defined]


def brisque(frame_rgb: np.ndarray) -> float:
    """BRISQUE score of one RGB frame (lower is better), computed on grey at the given size."""
    scorer, lock = _brisque_model()
    grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    with lock:
        return float(scorer.compute(grey)[0])


class AestheticScorer(Protocol):
    """Scores frames 0 (ugly) … 10 (beautiful); `name` is recorded beside every score."""

    name: str

    def score(self, frames_rgb: list[np.ndarray]) -> float: ...


class HeuristicAestheticStandIn:
    """NOT a learned aesthetic model: a transparent proxy, named as such in every output row.

    score = 10 × mean of four terms in [0, 1]: colourfulness (Hasler & Süsstrunk 2003, / 100),
    RMS contrast (/ 64), exposure (1 − share of clipped pixels < 8 or > 247, × 2, floored at 0) and
    sharpness (Laplacian variance / 300). Each term is clipped to [0, 1].
    """

    name = "heuristic-standin(colourfulness,contrast,exposure,sharpness)"

    def score(self, frames_rgb: list[np.ndarray]) -> float:
        terms = []
        for frame in frames_rgb:
            rgb = frame.astype(np.float32)
            rg = rgb[..., 0] - rgb[..., 1]
            yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
            colourful = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            clipped = float(((grey < 8) | (grey > 247)).mean())
            sharp = cv2.Laplacian(grey, cv2.CV_64F).var()
            terms.append(
                [
                    min(1.0, colourful / 100.0),
                    min(1.0, float(grey.std()) / 64.0),
                    max(0.0, 1.0 - 2.0 * clipped),
                    min(1.0, sharp / 300.0),
                ]
            )
        return float(10.0 * np.mean(terms))


class TorchScriptAestheticModel:
    """A learned aesthetic model given by path: TorchScript, (B, 3, 224, 224) in [0, 1] → (B,) in 0-10."""

    def __init__(self, path: Path) -> None:
        import torch

        if not path.is_file():
            raise QualityModelMissingError(f"aesthetic model {path} does not exist")
        self._model = torch.jit.load(str(path), map_location="cpu").eval()
        self.name = f"torchscript:{path.name}"

    def score(self, frames_rgb: list[np.ndarray]) -> float:
        import torch

        batch = np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames_rgb])
        x = torch.from_numpy(batch).float().div_(255.0).permute(0, 3, 1, 2)  # (B, 3, 224, 224)
        with torch.inference_mode():
            return float(self._model(x).float().mean())


@functools.cache
def load_aesthetic_scorer(path: str | None) -> AestheticScorer:
    """The configured aesthetic scorer (cached per process): a model by path, else the stand-in."""
    return TorchScriptAestheticModel(Path(path)) if path else HeuristicAestheticStandIn()

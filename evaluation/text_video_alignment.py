"""Text–video alignment with CLIP or X-CLIP weights from a local folder (no hub access).

The folder is what `save_pretrained` writes for a `transformers` `CLIPModel` or `XCLIPModel` plus its
tokenizer (`config.json`, weights, `tokenizer.json` …), optionally with a `preprocessor_config.json`
giving the image size, mean and std. No CLIP ships offline, so when no folder is configured the
metric is reported as not configured (`evaluation.video_metrics`), never estimated.

Definitions (units: cosine similarity, in [−1, 1]; higher = the video matches its prompt better):
- CLIP: CLIPSIM (Wu et al. 2021, as used by VBench's overall consistency with ViCLIP): the mean over
  `frames` evenly spaced frames of cos(text embedding, frame embedding).
- X-CLIP: cos(video embedding, video-conditioned text embedding) of one clip of the model's
  `num_frames` evenly spaced frames (Ni et al. 2022).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange

# OpenAI CLIP's preprocessing constants, used when the folder has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class TextVideoModelError(ValueError):
    """The configured text–video model folder is missing, unreadable or of an unsupported type."""


class TextVideoAligner:
    """A CLIP or X-CLIP model loaded from `path`; `score(video, prompt)` gives the alignment."""

    def __init__(self, path: str | Path, frames: int = 8) -> None:
        from transformers import AutoConfig, AutoTokenizer, CLIPModel, XCLIPModel

        folder = Path(path)
        if not (folder / "config.json").is_file():
            raise TextVideoModelError(
                f"text-video model {folder}: no config.json there; give a folder written by "
                "save_pretrained of a transformers CLIPModel or XCLIPModel"
            )
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        model_class: type[CLIPModel] | type[XCLIPModel]
        if config.model_type == "clip":
            self.kind, model_class = "clip", CLIPModel
        elif config.model_type == "xclip":
            self.kind, model_class = "x-clip", XCLIPModel
        else:
            raise TextVideoModelError(
                f"text-video model {folder}: model_type {config.model_type!r} is neither 'clip' nor 'xclip'"
            )
        self.model = model_class.from_pretrained(folder, local_files_only=True).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        vision = config.vision_config
        self.frames = int(vision.num_frames) if self.kind == "x-clip" else frames
        self.max_tokens = int(config.text_config.max_position_embeddings)
        self.image_size = _as_int(vision.image_size)
        self.mean, self.std = CLIP_MEAN, CLIP_STD
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            settings = json.loads(preprocessor.read_text())
            self.mean = tuple(settings.get("image_mean", self.mean))
            self.std = tuple(settings.get("image_std", self.std))
        self.name = f"{self.kind}:{folder.name}"

    def pixels(self, video: np.ndarray) -> torch.Tensor:
        """The model's input frames of `video` (see `clip_pixels`); X-CLIP takes exactly `frames`."""
        return clip_pixels(
            video, self.frames, self.image_size, self.mean, self.std, exact=self.kind == "x-clip"
        )

    def score(self, video: np.ndarray, prompt: str) -> float:
        """Alignment of a uint8 RGB video (T, H, W, 3) with `prompt` (see the module's definitions)."""
        tokens = self.tokenizer(
            [prompt], padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        pixels = self.pixels(video)
        with torch.inference_mode():
            if self.kind == "clip":
                out = self.model(**tokens, pixel_values=pixels)
                # Embeddings come L2-normalised: (1, E) text, (F, E) frames.
                return float((out.image_embeds @ out.text_embeds[0]).mean())
            out = self.model(**tokens, pixel_values=pixels[None])  # (1, F, 3, S, S)
            # text_embeds (videos, texts, E) and video_embeds (videos, E), both L2-normalised.
            return float(out.video_embeds[0] @ out.text_embeds[0, 0])


def clip_pixels(
    video: np.ndarray,
    frames: int,
    size: int,
    mean: tuple[float, ...] = CLIP_MEAN,
    std: tuple[float, ...] = CLIP_STD,
    exact: bool = False,
) -> torch.Tensor:
    """uint8 (T, H, W, 3) → (F, 3, size, size) normalised floats: F ≤ `frames` evenly spaced frames
    (exactly `frames`, repeating some, when `exact`), short side resized to `size` (bicubic) and
    centre-cropped — CLIP's own preprocessing."""
    picks = np.linspace(0, len(video) - 1, frames).round().astype(int)
    if not exact:
        picks = np.unique(picks)
    out = []
    for frame in video[picks]:
        h, w = frame.shape[:2]
        scale = size / min(h, w)
        resized = cv2.resize(
            frame, (max(size, round(w * scale)), max(size, round(h * scale))), interpolation=cv2.INTER_CUBIC
        )
        top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
        out.append(resized[top : top + size, left : left + size])
    x = rearrange(torch.from_numpy(np.stack(out)).float().div_(255.0), "f h w c -> f c h w")
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _as_int(size: int | list[int] | tuple[int, ...]) -> int:
    return int(size if isinstance(size, int) else size[0])


@functools.cache
def load_text_video_aligner(path: str, frames: int = 8) -> TextVideoAligner:
    """The aligner for a model folder, loaded once per process."""
    return TextVideoAligner(path, frames)

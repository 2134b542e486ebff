"""`CaptionConfig`: which backend writes captions and how, with `tiny` and `paper` presets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from curation.camera_motion import CameraMotionConfig
from model.presets import PresetConfig

BackendName = Literal["offline", "endpoint", "local_vlm", "ground_truth"]


class EndpointConfig(BaseModel):
    """An OpenAI-compatible chat-completions server (vLLM, SGLang, TGI …) serving a VLM."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="…/v1; POST {base_url}/chat/completions"
    )
    model: str = Field(default="Qwen/Qwen2-VL-7B-Instruct", description="the served model name")
    api_key_env: str | None = Field(default=None, description="environment variable holding a bearer token")
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="requests per clip before the failure is recorded")
    temperature: float = Field(default=0.2, ge=0)
    max_tokens: int = Field(default=1024, ge=16)
    image_side: int = Field(
        default=448, ge=32, description="keyframes are resized so the long side is this (px)"
    )


class CaptionConfig(PresetConfig, BaseModel):
    """How captions are made. Presets: `tiny` (CPU tests, offline facts) and `paper` (VLM endpoint)."""

    model_config = ConfigDict(extra="forbid")

    backend: BackendName = "offline"
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    local_vlm_path: Path | None = Field(
        default=None, description="a transformers image-text-to-text model folder (backend local_vlm)"
    )
    n_keyframes: int = Field(
        default=3, ge=1, description="evenly spaced frames sent to / measured by a backend"
    )
    camera_min_confidence: float = Field(
        default=0.6, ge=0.0, le=1.0, description="camera labels below this confidence stay out of captions"
    )
    camera_preset: str = Field(
        default="tiny", description="curation.camera_motion.CameraMotionConfig preset of the camera labels"
    )
    ocr: bool = Field(default=True, description="read burnt-in text with tesseract (offline backend)")
    ocr_min_confidence: float = Field(default=70.0, ge=0, le=100, description="tesseract word confidence")
    imagenet_min_probability: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="ImageNet labels below this softmax probability are not said",
    )
    faces: bool = Field(default=True, description="count frontal faces with OpenCV's Haar cascade")
    corpus_ground_truth: bool = Field(
        default=True, description="demo-corpus clips (labels.json beside the raw video) take the corpus truth"
    )

    @field_validator("camera_preset")
    @classmethod
    def _known_camera_preset(cls, name: str) -> str:
        if name not in CameraMotionConfig.PRESETS:
            raise ValueError(f"camera_preset {name!r} is not one of {', '.join(CameraMotionConfig.PRESETS)}")
        return name


_TINY = CaptionConfig(n_keyframes=2)
CaptionConfig.PRESETS = {
    # Offline facts from 2 keyframes, the tiny camera-motion settings.
    "tiny": _TINY,
    # A served VLM (vLLM/SGLang) with 4 keyframes, full-resolution camera motion.
    "paper": _TINY.replace(backend="endpoint", n_keyframes=4, camera_preset="paper"),
}

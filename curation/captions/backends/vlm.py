"""Caption backend (1): a vision-language model, served (OpenAI-compatible) or from a local path.

The production path. Keyframes go to the model as images; its answer must be one JSON object
with the six text fields of `CaptionText`. Answers are parsed strictly, then repaired
conservatively (`json_repair`), then validated; an invalid answer is retried with the validation
error fed back, up to `max_attempts` requests. When every attempt fails the record says
`failed` with each attempt's reason: a caption is never silently empty.

The camera movement is not asked of the model: the classifier's label is added when confident
(provenance `camera-motion-classifier`) and is given to the model as context.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import ValidationError

from curation.camera_motion import CameraMotionResult
from curation.captions.backends.base import camera_fields, classify_clip_camera
from curation.captions.config import CaptionConfig
from curation.captions.json_repair import JSONRepairError, parse_json_object
from curation.captions.keyframes import ClipInput, ClipReadError, read_keyframes
from curation.captions.schema import TEXT_FIELDS, CaptionRecord, CaptionText, StructuredCaption

SYSTEM_PROMPT = (
    "You caption video clips for training a text-to-video model. You see keyframes of one clip in "
    "order. Answer with ONE JSON object and nothing else, with exactly these string keys: "
    '"short_description" (one sentence: main subject and action), "dense_description" (several '
    'sentences: subjects, actions, scene changes, camera movement), "background" (the environment), '
    '"style" (shot type or genre, e.g. aerial, close-up, documentary), "lighting" (light level, '
    'contrast, colour temperature), "atmosphere" (mood). Describe only what is visible.'
)


class BackendRequestError(RuntimeError):
    """The model could not be asked (connection, HTTP status, malformed response envelope)."""


@dataclass
class ChatTurn:
    """One message of the conversation, backend-neutral: text plus optional RGB images (H, W, 3)."""

    role: str
    text: str
    images: list[np.ndarray] = field(default_factory=list)


def _resize_long_side(frame: np.ndarray, side: int) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = side / max(height, width)
    if scale >= 1.0:
        return frame
    return cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def jpeg_data_url(frame: np.ndarray, side: int) -> str:
    """An RGB frame as a `data:image/jpeg;base64,...` URL, long side at most `side` px."""
    ok, encoded = cv2.imencode(
        ".jpg",
        cv2.cvtColor(_resize_long_side(frame, side), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, 90],
    )
    if not ok:
        raise BackendRequestError("JPEG encoding of a keyframe failed")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def user_turn(frames: list[np.ndarray], camera: CameraMotionResult | None, min_confidence: float) -> ChatTurn:
    """The request: the keyframes and, when confident, the measured camera movement as context."""
    text = f"{len(frames)} keyframes of the clip, in order."
    if camera is not None and camera.confidence >= min_confidence:
        text += f' A camera-motion classifier measured: "{camera.label}".'
    return ChatTurn("user", text + " Return the JSON object.", list(frames))


class ChatCaptionBackend:
    """Shared retry / repair / validation loop; subclasses implement `complete`."""

    name = "vlm"

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config

    def complete(self, turns: list[ChatTurn]) -> str:
        """The model's text answer to the conversation; raises `BackendRequestError`."""
        raise NotImplementedError

    def caption(self, clip: ClipInput) -> CaptionRecord:
        try:
            frames, _ = read_keyframes(clip, self.config.n_keyframes)
        except ClipReadError as error:
            return CaptionRecord(
                clip_id=clip.clip_id, backend=self.name, status="failed", attempts=1, error=str(error)
            )
        camera = classify_clip_camera(clip, self.config.camera_preset)
        turns = [
            ChatTurn("system", SYSTEM_PROMPT),
            user_turn(frames, camera, self.config.camera_min_confidence),
        ]
        errors: list[str] = []
        attempts = self.config.endpoint.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                answer = self.complete(turns)
            except BackendRequestError as error:
                errors.append(f"attempt {attempt}: request failed: {error}")
                continue
            try:
                payload, repaired = parse_json_object(answer)
                text = CaptionText.model_validate(payload)
            except (JSONRepairError, ValidationError) as error:
                reason = (
                    str(error).splitlines()[0]
                    if isinstance(error, JSONRepairError)
                    else _short_validation(error)
                )
                errors.append(f"attempt {attempt}: invalid answer: {reason}")
                # Feed the problem back: models fix a named mistake more reliably than a bare retry.
                turns = [
                    *turns[:2],
                    ChatTurn("assistant", answer[:4000]),
                    ChatTurn(
                        "user", f"That answer was not valid ({reason}). Reply with only the JSON object."
                    ),
                ]
                continue
            fields, provenance = camera_fields(camera, self.config.camera_min_confidence)
            caption = StructuredCaption(
                **text.model_dump(),
                **fields,
                provenance={**{f: self.name for f in TEXT_FIELDS}, **provenance},
            )
            return CaptionRecord(
                clip_id=clip.clip_id,
                backend=self.name,
                status="repaired" if repaired else "ok",
                attempts=attempt,
                caption=caption,
            )
        return CaptionRecord(
            clip_id=clip.clip_id,
            backend=self.name,
            status="failed",
            attempts=attempts,
            error="; ".join(errors),
        )


def _short_validation(error: ValidationError) -> str:
    problems = [f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:4]]
    return "schema: " + "; ".join(problems)


class EndpointBackend(ChatCaptionBackend):
    """A VLM behind an OpenAI-compatible `/chat/completions` (vLLM, SGLang); images as base64 JPEG."""

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__(config)
        self.name = f"endpoint:{config.endpoint.model}"
        import httpx

        endpoint = config.endpoint
        headers = {}
        if endpoint.api_key_env:
            token = os.environ.get(endpoint.api_key_env)
            if not token:
                raise ValueError(f"caption endpoint: environment variable {endpoint.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=endpoint.base_url.rstrip("/"), headers=headers, timeout=endpoint.timeout_s
        )

    def messages(self, turns: list[ChatTurn]) -> list[dict[str, Any]]:
        """OpenAI chat format: text parts plus `image_url` parts with data URLs."""
        out: list[dict[str, Any]] = []
        for turn in turns:
            if not turn.images:
                out.append({"role": turn.role, "content": turn.text})
                continue
            parts: list[dict[str, Any]] = [
                {"type": "image_url", "image_url": {"url": jpeg_data_url(f, self.config.endpoint.image_side)}}
                for f in turn.images
            ]
            parts.append({"type": "text", "text": turn.text})
            out.append({"role": turn.role, "content": parts})
        return out

    def complete(self, turns: list[ChatTurn]) -> str:
        import httpx

        endpoint = self.config.endpoint
        body = {
            "model": endpoint.model,
            "messages": self.messages(turns),
            "temperature": endpoint.temperature,
            "max_tokens": endpoint.max_tokens,
        }
        try:
            response = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as error:
            raise BackendRequestError(f"{endpoint.base_url}: {error}") from error
        if response.status_code != 200:
            raise BackendRequestError(
                f"{endpoint.base_url}: HTTP {response.status_code}: {response.text[:200]}"
            )
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise BackendRequestError(
                f"{endpoint.base_url}: not a chat-completions response ({error})"
            ) from error
        if not isinstance(content, str):
            raise BackendRequestError(
                f"{endpoint.base_url}: message content is {type(content).__name__}, not text"
            )
        return content

    def close(self) -> None:
        self._client.close()


class LocalVLMBackend(ChatCaptionBackend):
    """A transformers image-text-to-text model read from `CaptionConfig.local_vlm_path` (no download)."""

    def __init__(self, config: CaptionConfig) -> None:
        super().__init__(config)
        path = config.local_vlm_path
        if path is None or not Path(path).is_dir():
            raise FileNotFoundError(
                f"caption backend local_vlm: model folder {path} does not exist; set local_vlm_path"
            )
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = f"local-vlm:{Path(path).name}"
        self._processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        self._model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True).eval()

    def complete(self, turns: list[ChatTurn]) -> str:
        import torch
        from PIL import Image

        messages = [
            {
                "role": turn.role,
                "content": [{"type": "image", "image": Image.fromarray(f)} for f in turn.images]
                + [{"type": "text", "text": turn.text}],
            }
            for turn in turns
        ]
        inputs = self._processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )
        with torch.no_grad():
            output = self._model.generate(
                **inputs, max_new_tokens=self.config.endpoint.max_tokens, do_sample=False
            )
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return str(self._processor.decode(new_tokens, skip_special_tokens=True))

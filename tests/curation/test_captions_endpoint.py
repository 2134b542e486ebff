"""The VLM endpoint backend against a real OpenAI-format HTTP server on 127.0.0.1 (a subprocess).

The server answers `POST /v1/chat/completions`; what it answers depends on the requested model
name, so each test scripts one behaviour: clean JSON, fenced JSON with a trailing comma (must be
repaired), an answer missing a field and then a valid one (retried), prose only (recorded as a
failure), and an HTTP 500 followed by a valid answer. Every request is logged to a JSON-lines file.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from curation.captions import (
    CaptionConfig,
    ClipInput,
    EndpointConfig,
    build_backend,
    caption_problems,
    records_to_table,
)
from curation.captions.json_repair import JSONRepairError, parse_json_object
from media.video import write_video

SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    LOG = sys.argv[1]
    GOOD = {"short_description": "A cat looks at the camera.",
            "dense_description": "A ginger cat sits still while the camera pans left across it.",
            "background": "a plain wall", "style": "close-up", "lighting": "soft daylight",
            "atmosphere": "calm"}
    calls = {}

    def answer(model, n):
        if model == "clean":
            return 200, json.dumps(GOOD)
        if model == "fenced":  # Markdown fence, a sentence before it, a trailing comma
            body = json.dumps(GOOD, indent=1)[:-2] + ',\\n}'
            return 200, "Here is the caption:\\n```json\\n" + body + "\\n```"
        if model == "flaky":  # first a JSON object without the lighting field, then a good one
            broken = {k: v for k, v in GOOD.items() if k != "lighting"}
            return 200, json.dumps(broken if n == 1 else GOOD)
        if model == "prose":
            return 200, "I am sorry, I cannot describe this video."
        if model == "http500":
            return (500, "overloaded") if n == 1 else (200, json.dumps(GOOD))
        return 404, "unknown model"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            calls[model] = calls.get(model, 0) + 1
            with open(LOG, "a") as log:
                log.write(json.dumps({"path": self.path, "body": body}) + "\\n")
            status, text = answer(model, calls[model])
            if status == 200:
                payload = {"id": "x", "object": "chat.completion", "model": model,
                           "choices": [{"index": 0, "finish_reason": "stop",
                                        "message": {"role": "assistant", "content": text}}]}
                data = json.dumps(payload).encode()
            else:
                data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vlm")
    script, log = folder / "server.py", folder / "requests.jsonl"
    script.write_text(SERVER)
    process = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}/v1", log
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # once seen in CI: SIGTERM did not end it within 10 s
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> ClipInput:
    """24 frames (256×144) panning over a real photo, H.264."""
    photo = cv2.cvtColor(
        cv2.imread(str(Path(skimage.__file__).parent / "data" / "chelsea.png")), cv2.COLOR_BGR2RGB
    )
    path = tmp_path_factory.mktemp("clip") / "cat.mp4"
    write_video(path, [photo[60:204, 20 + 2 * t : 276 + 2 * t] for t in range(24)], 24)
    return ClipInput("cat", path)


def _backend(url: str, model: str, attempts: int = 3):
    config = CaptionConfig(
        backend="endpoint",
        n_keyframes=2,
        endpoint=EndpointConfig(base_url=url, model=model, max_attempts=attempts, timeout_s=30),
    )
    return build_backend(config)


def _requests(log: Path, model: str) -> list[dict]:
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["body"]["model"] == model]


def test_clean_answer_with_images_as_base64_jpeg(server, clip):
    url, log = server
    record = _backend(url, "clean").caption(clip)
    assert record.status == "ok" and record.attempts == 1
    assert record.caption is not None
    assert record.caption.style == "close-up"
    assert record.caption.provenance["lighting"] == "endpoint:clean"
    # The classifier's confident label goes in the caption with its own provenance.
    assert record.caption.camera_movement == "pan right"
    assert record.caption.provenance["camera_movement"] == "camera-motion-classifier"
    (request,) = _requests(log, "clean")
    assert request["path"] == "/v1/chat/completions"
    parts = request["body"]["messages"][1]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 2
    assert all(url.startswith("data:image/jpeg;base64,") for url in images)
    decoded = cv2.imdecode(
        np.frombuffer(base64.b64decode(images[0].split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR
    )
    assert decoded.shape == (144, 256, 3)
    assert "pan right" in parts[-1]["text"]


def test_malformed_json_is_repaired(server, clip):
    url, log = server
    record = _backend(url, "fenced").caption(clip)
    assert record.status == "repaired"
    assert record.attempts == 1
    assert record.caption is not None and record.caption.short_description == "A cat looks at the camera."
    assert len(_requests(log, "fenced")) == 1


def test_invalid_schema_is_retried_with_the_error_fed_back(server, clip):
    url, log = server
    record = _backend(url, "flaky").caption(clip)
    assert record.status == "ok" and record.attempts == 2
    first, second = _requests(log, "flaky")
    assert len(first["body"]["messages"]) == 2
    feedback = second["body"]["messages"][-1]["content"]
    assert "lighting" in feedback and "JSON object" in feedback


def test_unrepairable_answer_is_recorded_as_failure_not_empty(server, clip):
    url, log = server
    record = _backend(url, "prose", attempts=2).caption(clip)
    assert record.status == "failed" and record.caption is None
    assert record.attempts == 2
    assert record.error is not None and record.error.count("no complete JSON object") == 2
    assert len(_requests(log, "prose")) == 2
    table = records_to_table([record])
    assert table.column("status").to_pylist() == ["failed"]
    assert caption_problems(table, ["cat"]) == [f"cat: caption failed ({record.error})"]


def test_http_error_is_retried(server, clip):
    url, _ = server
    record = _backend(url, "http500").caption(clip)
    assert record.status == "ok" and record.attempts == 2


def test_unreachable_server_is_a_recorded_failure(clip):
    record = _backend("http://127.0.0.1:9/v1", "clean", attempts=1).caption(clip)
    assert record.status == "failed"
    assert record.error is not None and "request failed" in record.error


@pytest.mark.parametrize(
    ("text", "repaired"),
    [
        ('{"a": 1}', False),
        ('```json\n{"a": 1,}\n```', True),
        ('Sure! {"a": "x}", "b": [1, 2,],} trailing words {"c": 3}', True),
    ],
)
def test_json_repair(text, repaired):
    value, was_repaired = parse_json_object(text)
    assert was_repaired is repaired
    assert value["a"] in (1, "x}")


def test_json_repair_refuses_what_it_cannot_fix():
    with pytest.raises(JSONRepairError, match="no complete JSON object"):
        parse_json_object('{"a": 1')
    with pytest.raises(JSONRepairError, match="does not parse"):
        parse_json_object("{'a': 1}")

"""A real browser (Playwright driving Debian's /usr/bin/chromium, headless) against the demo served by
`videofoundry serve demo --model tiny-random` in a subprocess on 127.0.0.1: type a prompt, generate,
wait for the video element, save a screenshot and check it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def demo_url(tmp_path: Path) -> Iterator[str]:
    with served_demo(tmp_path) as url:
        yield url


@contextmanager
def served_demo(tmp_path: Path, *options: str) -> Iterator[str]:
    """`videofoundry serve demo --model tiny-random [options]` until the block ends; yields its URL."""
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", VIDEOFOUNDRY_HOME=str(tmp_path / "home"))
    cli = Path(sys.executable).parent / "videofoundry"
    argv = [str(cli), "serve", "demo", "--model", "tiny-random", "--port", str(port), "--cpu-threads", "1"]
    argv += options
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"demo exited with {proc.returncode}: {(tmp_path / 'demo.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(url + "/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("demo did not answer within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_browser_generates_a_video_with_tiny_random(browser: Browser, demo_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    screenshot = tmp_path / "demo.png"
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(demo_url + "/")
    expect(page.locator("#model-version")).to_contain_text("tiny-random (seed 0, untrained)")
    page.fill("#t2v-prompt textarea", "a red kite over a stormy sea")
    page.click("#t2v-generate")
    video = page.locator("#t2v-video video")
    video.wait_for(state="visible", timeout=90_000)
    page.wait_for_function("document.querySelector('#t2v-video video').readyState >= 1", timeout=30_000)
    duration = page.evaluate("document.querySelector('#t2v-video video').duration")
    assert duration == pytest.approx(9 / 8, abs=0.15)  # 9 frames at the tiny model's 8 fps
    expect(page.locator("#t2v-status")).to_contain_text("Generated 9 frames at 96×64")
    assert page.locator('[data-testid="toast-body"].error').count() == 0
    page.evaluate("window.scrollTo(0, 0)")  # the box in page coordinates, as the full-page screenshot
    video_box = video.bounding_box()
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.exists() and video_box is not None
    shot = np.asarray(Image.open(screenshot).convert("RGB")).astype(np.int16)
    x, y, w, h = (int(v) for v in (video_box["x"], video_box["y"], video_box["width"], video_box["height"]))
    region = shot[y + 5 : y + h - 5, x + 5 : x + w - 5]
    # The player shows the generated (noise-like, colourful) frame, not a blank or white area.
    assert region.size > 0 and region.std() > 20.0
    assert np.abs(region - 255).mean() > 40.0
    # No red error toast anywhere on the page (Gradio draws errors as red toasts at the top right).
    top_right = shot[:200, -450:]
    red = (top_right[..., 0] > 200) & (top_right[..., 1] < 80) & (top_right[..., 2] < 80)
    assert red.mean() < 0.01


@pytest.mark.slow
def test_browser_rewrite_checkbox_shows_the_rewritten_prompt(browser: Browser, tmp_path: Path) -> None:
    """The demo served with --rewrite-url at a local chat-completions server: tick the checkbox, pick
    master, generate; the status beside the video shows the rewritten prompt."""
    from playwright.sync_api import expect

    from tests.serving.chat_server import chat_server, completion

    with chat_server() as server, served_demo(tmp_path, "--rewrite-url", server.base_url) as url:
        server.reply = lambda body: (200, completion("A red kite over a grey sea. Style: wide shot."))
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url + "/")
        page.fill("#t2v-prompt textarea", "kite")
        page.check("#t2v-rewrite input[type=checkbox]")
        page.locator("#t2v-rewrite-mode").get_by_label("master").check()
        page.click("#t2v-generate")
        status = page.locator("#t2v-status")
        expect(status).to_contain_text(
            "Rewritten prompt (master): A red kite over a grey sea.", timeout=90_000
        )
        page.screenshot(path=str(tmp_path / "rewrite.png"), full_page=True)
        (_, _, body), = server.requests  # fmt: skip
        assert body["messages"][1]["content"] == "Request: kite"
        assert "composition" in body["messages"][0]["content"]  # the master instructions

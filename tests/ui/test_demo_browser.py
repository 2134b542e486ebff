"""A real browser (Playwright driving Debian's /usr/bin/chromium, headless) against the demo served by
`videofoundry serve demo --model <a tiny text-to-video-only bundle>` in a subprocess on 127.0.0.1:
the prompt starts filled, an empty prompt disables Generate with the reason, generate, wait for the
video element, save a screenshot and check it; the I2V tab explains why it is off for this model and
its examples fill their own prompts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from tests.ui.servers import free_port, stop, wait_until_answering
from ui.demo import EXAMPLES_T2V, example_images

if TYPE_CHECKING:
    from playwright.sync_api import Browser


pytestmark = pytest.mark.slow  # the demo server takes 20-60 s to start on a shared 2-core box


def _t2v_only_bundle(directory: Path) -> Path:
    import torch

    from model.bundle import save_pipeline
    from model.dit import HunyuanDiT
    from model.dit_config import DiTConfig
    from model.vae import CausalVAE3D, VAEConfig

    torch.manual_seed(0)
    transformer = HunyuanDiT(DiTConfig.preset("tiny"))  # no image conditioning: text-to-video only
    return save_pipeline(directory, transformer, CausalVAE3D(VAEConfig.preset("tiny")), "tiny-random", fps=8)


@pytest.fixture()
def demo_url(tmp_path: Path) -> Iterator[str]:
    with served_demo(tmp_path, str(_t2v_only_bundle(tmp_path / "t2v-only"))) as url:
        yield url


@contextmanager
def served_demo(tmp_path: Path, model: str, *options: str) -> Iterator[str]:
    """`videofoundry serve demo --model MODEL [options]` until the block ends; yields its URL."""
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", VIDEOFOUNDRY_HOME=str(tmp_path / "home"))
    cli = Path(sys.executable).parent / "videofoundry"
    argv = [str(cli), "serve", "demo", "--model", model, "--port", str(port), "--cpu-threads", "1"]
    argv += options
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, url + "/", tmp_path / "demo.log")
        yield url
    finally:
        stop(proc, timeout_s=20)
        log.close()


def test_browser_generates_a_video_and_explains_the_i2v_tab(
    browser: Browser, demo_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    screenshot = tmp_path / "demo.png"
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(demo_url + "/")
    expect(page.locator("#model-version")).to_contain_text("local t2v-only")
    expect(page.locator("#model-version")).to_contain_text("(text-to-video,")
    # What the tiny model is and what to expect, above the tabs (DemoConfig.about).
    expect(page.locator("#model-about")).to_contain_text("What you are talking to")
    expect(page.locator("#model-about")).to_contain_text("What to expect.")
    # The prompt starts from an example, so the default Generate works; an empty one disables it.
    expect(page.locator("#t2v-prompt textarea")).to_have_value(EXAMPLES_T2V[0][0])
    expect(page.locator("#t2v-generate")).to_be_enabled()
    page.fill("#t2v-prompt textarea", "")
    expect(page.locator("#t2v-generate")).to_be_disabled()
    expect(page.locator("#t2v-hint")).to_contain_text("Type a prompt")
    page.fill("#t2v-prompt textarea", "a red kite over a stormy sea")
    expect(page.locator("#t2v-generate")).to_be_enabled()
    expect(page.locator("#t2v-hint")).to_have_text("")
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

    # The I2V tab: off for this text-to-video-only model, saying why; examples bring their own prompt.
    page.get_by_role("tab", name="Image to video").click()
    expect(page.locator("#i2v-generate")).to_be_disabled()
    expect(page.locator("#i2v-hint")).to_contain_text("text-to-video only")
    coffee = next(text for path, text in example_images() if path.endswith("coffee.png"))
    page.locator('table:has(th:has-text("First frame")) img[src$="coffee.png"]').click()
    expect(page.locator("#i2v-prompt textarea")).to_have_value(coffee)
    expect(page.locator("#i2v-generate")).to_be_disabled()
    assert page.locator('[data-testid="toast-body"].error').count() == 0


@pytest.mark.slow
def test_browser_rewrite_checkbox_shows_the_rewritten_prompt(browser: Browser, tmp_path: Path) -> None:
    """The demo served with --rewrite-url at a local chat-completions server: tick the checkbox, pick
    master, generate; the status beside the video shows the rewritten prompt."""
    from playwright.sync_api import expect

    from tests.serving.chat_server import chat_server, completion

    with (
        chat_server() as server,
        served_demo(tmp_path, "tiny-random", "--rewrite-url", server.base_url) as url,
    ):
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

"""A real browser (Playwright driving Debian's /usr/bin/chromium, headless) signs in, rates one pair
with the keyboard, sees the progress move, saves a screenshot that we check, then accepts one clip
on the SFT-selection page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from evaluation.human_eval import (
    BUILTIN_PROMPTS,
    HumanEvalConfig,
    ModelSpec,
    SftCandidateSpec,
    accepted_sft_clips,
    assign_raters,
    create_campaign,
    create_rater,
    import_sft_candidates,
    open_store,
)
from evaluation.human_eval.aggregate import load_judgments
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.schema import Rating, SftDecision
from orchestration.raters_process import spawn_raters_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture()
def app_url(tmp_path: Path) -> Iterator[tuple[str, str, int]]:
    db_url = f"sqlite:///{tmp_path / 'he.db'}"
    config = HumanEvalConfig.preset(
        "tiny", db_url=db_url, raters_per_pair=1, gold_fraction=0.0, duplicate_fraction=0.0
    )
    campaign_id = create_campaign(
        config, "browser", BUILTIN_PROMPTS[:2], [ModelSpec("A", "m-a"), ModelSpec("B", "m-b-noisy")],
        SyntheticGenerator(tmp_path / "videos", size=(96, 160), frames=16), config, tmp_path / "videos",
    )  # fmt: skip
    alice, _ = create_rater(config, "alice", password="alice-pass")
    clip = SyntheticGenerator(tmp_path / "videos")("a clip", 3, "m-a")
    import_sft_candidates(
        config, [SftCandidateSpec("clip-7", str(clip), tier="720p", caption="a square moves")]
    )
    assign_raters(config, campaign_id, [alice.id], config)
    proc, base = spawn_raters_server(db_url)
    try:
        yield base, db_url, campaign_id
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_browser_login_rate_one_pair_progress_screenshot(
    browser: Browser, app_url: tuple[str, str, int], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    base, db_url, campaign_id = app_url
    screenshot = tmp_path / "rated.png"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base + "/")
    page.wait_for_url("**/login**")  # not signed in → sent to the login page
    page.fill("#name", "alice")
    page.fill("#password", "wrong-password")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_contain_text("wrong password")
    page.fill("#password", "alice-pass")
    page.click("#sign-in")
    page.wait_for_url(base + "/")
    expect(page.locator("#prompt")).not_to_be_empty()
    expect(page.locator("#progress-label")).to_have_text("0 / 2 rated")
    first_prompt = page.locator("#prompt").inner_text()
    # Both players load their (H.264) clip: metadata known, same duration.
    page.wait_for_function(
        "document.getElementById('video-left').readyState >= 1"
        " && document.getElementById('video-right').readyState >= 1"
    )
    durations = page.evaluate(
        "[document.getElementById('video-left').duration, document.getElementById('video-right').duration]"
    )
    assert durations[0] == pytest.approx(2.0, abs=0.2) and durations[0] == pytest.approx(durations[1])
    # Synchronised players: R restarts both, Space pauses both at the same position.
    page.keyboard.press("r")
    page.wait_for_timeout(600)
    playing = page.evaluate("['video-left', 'video-right'].map((id) => document.getElementById(id).paused)")
    assert playing == [False, False]
    page.keyboard.press(" ")
    paused = page.evaluate(
        "['video-left', 'video-right'].map((id) => [document.getElementById(id).paused,"
        " document.getElementById(id).currentTime])"
    )
    assert paused[0][0] and paused[1][0] and abs(paused[0][1] - paused[1][1]) < 0.05
    # Keyboard: 1 = left better, 2 = same, 3 = right better; each answer moves to the next question.
    expect(page.locator("#submit")).to_be_disabled()
    for key in ("1", "2", "3", "1"):
        page.keyboard.press(key)
    expect(page.locator("#q-overall button.selected")).to_have_text("Left better (1)")
    expect(page.locator("#submit")).to_be_enabled()
    page.keyboard.press("Enter")
    expect(page.locator("#progress-label")).to_have_text("1 / 2 rated")
    expect(page.locator("#prompt")).not_to_have_text(first_prompt)  # the next pair is shown
    assert page.evaluate("document.getElementById('progress-bar').value") == 1
    page.screenshot(path=str(screenshot), full_page=True)
    # SFT selection page: tick a criterion, accept with the keyboard, progress moves.
    page.goto(base + "/sft")
    expect(page.locator("#clip-meta")).to_contain_text("clip clip-7")
    page.check("input[data-group=accept][value=motion]")
    page.keyboard.press("a")
    expect(page.locator("#finished")).to_be_visible()
    expect(page.locator("#progress-label")).to_have_text("1 / 1 decided")

    image = np.asarray(Image.open(screenshot).convert("RGB"))
    assert image.shape[1] == 1280 and image.shape[0] >= 600
    assert image.std() > 10  # a rendered page, not a blank frame
    # The dark page background dominates; the progress bar and buttons add other colours.
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50

    with open_store(db_url).session() as session:
        ratings = session.scalars(select(Rating)).all()
    assert len(ratings) == 1
    stored = ratings[0]
    assert (stored.text_alignment, stored.motion_quality, stored.visual_quality, stored.overall) == (
        "left", "same", "right", "left",
    )  # fmt: skip
    assert stored.elapsed_ms is not None and stored.elapsed_ms > 0
    judged = load_judgments(db_url, campaign_id)
    assert len(judged) == 1 and judged.iloc[0]["overall"] in {"a", "b"}
    accepted = accepted_sft_clips(db_url)
    assert [(c.clip_id, c.accepts) for c in accepted] == [("clip-7", 1)]
    with open_store(db_url).session() as session:
        decision = session.scalars(select(SftDecision)).one()
    assert decision.reasons["criteria"] == ["motion"]


def test_browser_signs_in_with_the_password_eval_rater_prints_and_finds_pairs_waiting(
    browser: Browser, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from playwright.sync_api import expect

    db_url = f"sqlite:///{tmp_path / 'human_eval.db'}"
    config = HumanEvalConfig.preset("tiny", db_url=db_url, gold_fraction=0.0, duplicate_fraction=0.0)
    videos = tmp_path / "videos"
    gen = SyntheticGenerator(videos, size=(96, 160), frames=16)
    models = [ModelSpec("A", "m-a"), ModelSpec("B", "m-b-noisy")]
    create_campaign(config, "waiting", BUILTIN_PROMPTS[:2], models, gen, config, videos)  # no raters yet
    proc, base = spawn_raters_server(db_url)
    try:
        created = subprocess.run(
            [sys.executable, "-m", "orchestration.cli", "eval-rater", "bob", "--db", db_url, "--home",
             str(tmp_path / "home"), "--app-url", base],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        lines = created.stdout.splitlines()
        assert lines[1] == f"  sign in at {base}/login"
        password = lines[3].split()[1]
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(lines[1].split()[-1])
        page.fill("#name", "bob")
        page.fill("#password", password)
        page.click("#sign-in")
        page.wait_for_url(base + "/")
        expect(page.locator("#progress-label")).to_have_text("0 / 2 rated")  # not "0 / 0, all done"
        expect(page.locator("#prompt")).not_to_be_empty()
        expect(page.locator("#finished")).to_be_hidden()
    finally:
        proc.terminate()
        proc.wait(timeout=20)

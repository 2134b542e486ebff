"""`videofoundry eval-rater`, `eval-report` and `serve raters` as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from evaluation.human_eval import HumanEvalConfig, ModelSpec
from tests.evaluation.campaigns import rate_everything, synthetic_campaign

REPO = Path(__file__).resolve().parents[3]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from orchestration.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def home_with_campaign(tmp_path: Path) -> Path:
    db_url = f"sqlite:///{tmp_path / 'human_eval.db'}"
    config = HumanEvalConfig.preset("tiny", db_url=db_url, gold_fraction=0.0, duplicate_fraction=0.0)
    models = [ModelSpec("A", "m-a", "5s"), ModelSpec("B", "m-b")]
    synthetic_campaign(config, "cli-campaign", models, tmp_path / "videos", ["r0", "r1"])
    assert rate_everything(config, "same") == 4
    return tmp_path


def test_eval_report_markdown_json_and_errors(home_with_campaign: Path) -> None:
    home = str(home_with_campaign)
    markdown = run_cli("eval-report", "cli-campaign", "--home", home)
    assert markdown.returncode == 0, markdown.stderr
    assert "## Table 3" in markdown.stdout and "Rated assignments: 4/4" in markdown.stdout
    out = home_with_campaign / "reports" / "cli.json"
    as_json = run_cli("eval-report", "1", "--json", "--home", home, "--out", str(out))
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(out.read_text())
    assert report["complete"] and report["rated"] == 4
    overall = [row for row in report["gsb"] if row["dimension"] == "overall"][0]
    assert (overall["G"], overall["S"], overall["B"], overall["gsb"]) == (0, 4, 0, 0.0)  # all "same"
    missing = run_cli("eval-report", "no-such-campaign", "--home", home)
    assert missing.returncode == 2 and "no campaign named" in missing.stderr


def test_eval_rater_prints_a_password_the_app_accepts_and_queues_waiting_pairs(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from evaluation.human_eval import create_campaign
    from evaluation.human_eval.media import SyntheticGenerator
    from evaluation.human_eval.prompts import BUILTIN_PROMPTS
    from ui.raters import create_app

    db_url = f"sqlite:///{tmp_path / 'human_eval.db'}"  # <home>/human_eval.db: what the CLI opens
    config = HumanEvalConfig.preset("tiny", db_url=db_url, gold_fraction=0.0, duplicate_fraction=0.0)
    models = [ModelSpec("A", "m-a"), ModelSpec("B", "m-b")]
    videos = tmp_path / "videos"
    create_campaign(
        config, "waiting", BUILTIN_PROMPTS[:2], models, SyntheticGenerator(videos), config, videos
    )
    created = run_cli("eval-rater", "alice", "--home", str(tmp_path), "--app-url", "http://127.0.0.1:9999/")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert lines[0] == "rater alice (id 1) created."
    assert lines[1] == "  sign in at http://127.0.0.1:9999/login"
    password = lines[3].split()[1]
    assert lines[3].startswith("  password: ") and len(password) == 12
    assert lines[4] == "  2 pair(s) added to the queue"  # the campaign waited for raters: alice has work now

    client = TestClient(create_app(db_url))
    assert client.post("/api/login", json={"name": "alice", "password": password}).status_code == 200
    assert client.get("/api/progress").json() == {"done": 0, "total": 2}

    again = run_cli("eval-rater", "alice", "--password", "pw-123", "--home", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "rater alice (id 1) has a new password."
    assert "  password: pw-123" in again.stdout.splitlines()
    fresh = TestClient(create_app(db_url))
    assert fresh.post("/api/login", json={"name": "alice", "password": password}).status_code == 401
    assert fresh.post("/api/login", json={"name": "alice", "password": "pw-123"}).status_code == 200
    assert fresh.get("/api/progress").json() == {"done": 0, "total": 2}  # no pair dealt twice


def test_serve_raters_answers_on_port(home_with_campaign: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = "from orchestration.cli import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "raters",
            "--port",
            str(port),
            "--home",
            str(home_with_campaign),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "serve raters exited early"
                time.sleep(0.3)
        assert page.status_code == 200 and "VideoFoundry raters" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/api/me").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_raters_on_a_busy_port_fails_fast(tmp_path: Path) -> None:
    """Regression (issue 23, L7): a busy port gave uvicorn's text and exit code 3 after startup."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run_cli("serve", "raters", "--port", str(port), "--home", str(tmp_path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use"
    assert "Traceback" not in result.stderr and "rater app:" not in result.stdout
    refused = run_cli("serve", "raters", "--port", "70000", "--home", str(tmp_path))
    assert refused.returncode == 2 and "--port" in refused.stderr and "65535" in refused.stderr

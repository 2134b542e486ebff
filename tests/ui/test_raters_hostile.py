"""Hostile client input against the real rater app over HTTP (uvicorn on 127.0.0.1), on SQLite and
on PostgreSQL: every answer is a 4xx (never a 5xx), error answers stay small (no echo of the body),
and the specific defects of issue 23 get their specific status codes.

Login rate limiting runs on its own server with small limits, so it locks nobody out of the battery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from evaluation.human_eval import (
    DIMENSIONS,
    HumanEvalConfig,
    ModelSpec,
    PromptSpec,
    assign_raters,
    create_campaign,
    create_rater,
    import_sft_candidates,
)
from evaluation.human_eval.config import RaterAppConfig
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.sft import SftCandidateSpec
from orchestration.raters_process import spawn_raters_server

JSON = {"content-type": "application/json"}
BIG = 2**63
ANSWERS = dict.fromkeys(DIMENSIONS, "left")
#: An error answer longer than this echoes input (bounded details are a few hundred bytes).
MAX_ERROR_BYTES = 4096


@dataclass(frozen=True)
class Case:
    """One hostile request. `auth`: None, "rater" or "admin". `body`: raw bytes or a byte iterator
    factory (sent chunked, without Content-Length). `expect`: the exact status, when it matters."""

    label: str
    method: str
    path: str
    body: bytes | Callable[[], Iterator[bytes]] | None = None
    headers: dict[str, str | bytes] = field(default_factory=dict)
    auth: str | None = "rater"
    expect: int | None = None


def _rating(**fields: object) -> bytes:
    import json

    return json.dumps({"client_submission_id": "hostile", "answers": ANSWERS, **fields}).encode()


def _chunks(total: int, size: int = 64 * 1024) -> Callable[[], Iterator[bytes]]:
    def generate() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(total // size):
            yield b"a" * size
        yield b'", "password": "x"}'

    return generate


def hostile_cases(assignment: int, candidate: int, campaign: int) -> list[Case]:
    """The battery (issue 23, item 2); `assignment`/`candidate`/`campaign` are real ids of the rater."""
    rate = f"/api/assignments/{assignment}/ratings"
    decide = f"/api/sft/{candidate}/decisions"
    huge = b'{"name": "' + b"a" * 2_000_000 + b'", "password": "x"}'
    # fmt: off
    return [
        # Integers out of range in paths (M3: 500 for ≥ 2^63).
        *(Case(f"assignment id {i}", "GET", f"/api/assignments/{i}", expect=422)
          for i in (BIG, 10**30, 2**31, 0, -1)),
        Case("assignment id 2^31-1 (absent)", "GET", f"/api/assignments/{2**31 - 1}", expect=404),
        Case("assignment id not a number", "GET", "/api/assignments/1e3", expect=422),
        Case("assignment id with NUL", "GET", "/api/assignments/%00", expect=422),
        Case("video of id 2^63", "GET", f"/api/assignments/{BIG}/video/left", expect=422),
        Case("rating for id 2^63", "POST", f"/api/assignments/{BIG}/ratings", _rating(), JSON, expect=422),
        Case("sft video of id 2^63", "GET", f"/api/sft/{BIG}/video", expect=422),
        Case("sft decision for id 2^63", "POST", f"/api/sft/{BIG}/decisions",
             b'{"client_submission_id": "h", "decision": "accept"}', JSON, expect=422),
        Case("results of campaign 2^63", "GET", f"/api/admin/campaigns/{BIG}/results", auth="admin", expect=422),
        Case("results of campaign 10^30", "GET", f"/api/admin/campaigns/{10**30}/results", auth="admin",
             expect=422),
        # elapsed_ms (M3: unbounded → 500) and wrong types.
        *(Case(f"elapsed_ms {value}", "POST", rate, _rating(elapsed_ms=value), JSON, expect=422)
          for value in (BIG, 10**30, -1, 10**12, 1.5, "100", True)),
        Case("answers as a list", "POST", rate, _rating(answers=["left"] * 4), JSON, expect=422),
        Case("answers as numbers", "POST", rate, _rating(answers=dict.fromkeys(DIMENSIONS, 1)), JSON, expect=422),
        Case("answers nested", "POST", rate, _rating(answers={"overall": {"x": "y"}}), JSON, expect=422),
        Case("answers unknown choice", "POST", rate, _rating(answers=dict.fromkeys(DIMENSIONS, "up")), JSON,
             expect=422),
        Case("answers 1,000 keys", "POST", rate, _rating(answers={f"k{i}": "left" for i in range(1000)}), JSON,
             expect=422),
        Case("answers key of 100 kB", "POST", rate, _rating(answers={"k" * 100_000: "left"}), JSON, expect=422),
        Case("submission id of 900 kB", "POST", rate,
             b'{"client_submission_id": "' + b"x" * 900_000 + b'", "answers": {}}', JSON, expect=422),
        Case("submission id a number", "POST", rate, _rating(client_submission_id=7), JSON, expect=422),
        Case("rating with extra field", "POST", rate, _rating(model="A"), JSON, expect=422),
        Case("rating without answers", "POST", rate, b'{"client_submission_id": "h"}', JSON, expect=422),
        # Not strict JSON (M3: NaN/Infinity → 500, even unauthenticated).
        Case("login name NaN", "POST", "/api/login", b'{"name": NaN, "password": "x"}', JSON, None, 400),
        Case("login password Infinity", "POST", "/api/login", b'{"name": "a", "password": Infinity}', JSON,
             None, 400),
        Case("login -Infinity", "POST", "/api/login", b'{"name": -Infinity, "password": "x"}', JSON, None, 400),
        Case("rating elapsed_ms NaN", "POST", rate, b'{"client_submission_id": "h", "answers": {}, "elapsed_ms": NaN}',
             JSON, expect=400),
        Case("sft criteria [NaN]", "POST", decide,
             b'{"client_submission_id": "h", "decision": "accept", "criteria": [NaN]}', JSON, expect=400),
        Case("admin new rater role NaN", "POST", "/api/admin/raters", b'{"name": "z", "role": NaN}', JSON,
             auth="admin", expect=400),
        Case("nesting 100,000 deep", "POST", "/api/login", b"[" * 100_000 + b"]" * 100_000, JSON, None, 400),
        Case("nesting 500 deep objects", "POST", rate, b'{"a":' * 500 + b"1" + b"}" * 500, JSON, expect=400),
        Case("integer of 5,000 digits", "POST", rate,
             b'{"client_submission_id": "h", "answers": {}, "elapsed_ms": ' + b"9" * 5000 + b"}", JSON, expect=400),
        Case("truncated JSON", "POST", "/api/login", b'{"name": "a", ', JSON, None, 400),
        Case("invalid UTF-8", "POST", "/api/login", b'{"name": "\xff\xfe", "password": "x"}', JSON, None, 400),
        Case("lone surrogate in password", "POST", "/api/login", b'{"name": "a", "password": "\\ud800"}', JSON,
             None, 400),
        Case("lone surrogate in key", "POST", rate, b'{"\\udfff": 1}', JSON, expect=400),
        Case("NUL in login name", "POST", "/api/login", b'{"name": "a\\u0000b", "password": "x"}', JSON, None, 400),
        Case("NUL in sft note", "POST", decide,
             b'{"client_submission_id": "h", "decision": "accept", "note": "\\u0000"}', JSON, expect=400),
        # Wrong shapes and types.
        Case("login body an array", "POST", "/api/login", b"[]", JSON, None, 422),
        Case("login body a string", "POST", "/api/login", b'"name"', JSON, None, 422),
        Case("login body null", "POST", "/api/login", b"null", JSON, None, 422),
        Case("login body empty", "POST", "/api/login", b"", JSON, None, 422),
        Case("login name a number", "POST", "/api/login", b'{"name": 123, "password": "x"}', JSON, None, 422),
        Case("login password null", "POST", "/api/login", b'{"name": "a", "password": null}', JSON, None, 422),
        Case("login as text/plain", "POST", "/api/login", b'{"name": "a", "password": "x"}',
             {"content-type": "text/plain"}, None, 422),
        Case("login form-encoded", "POST", "/api/login", b"name=a&password=x",
             {"content-type": "application/x-www-form-urlencoded"}, None, 422),
        Case("sft decision unknown", "POST", decide, b'{"client_submission_id": "h", "decision": "maybe"}', JSON,
             expect=422),
        Case("sft 10,000 criteria", "POST", decide,
             b'{"client_submission_id": "h", "decision": "accept", "criteria": [' + b'"x",' * 9999 + b'"x"]}',
             JSON, expect=422),
        Case("admin new rater role 1 kB", "POST", "/api/admin/raters",
             b'{"name": "z", "role": "' + b"r" * 1000 + b'"}', JSON, auth="admin", expect=422),
        Case("results exclude_flagged=maybe", "GET", f"/api/admin/campaigns/{campaign}/results?exclude_flagged=maybe",
             auth="admin", expect=422),
        # Oversized bodies (M4: parsed at any size, even unauthenticated; the 422 echoed them).
        Case("login body 2 MB", "POST", "/api/login", huge, JSON, None, 413),
        Case("login body 2 MB chunked", "POST", "/api/login", _chunks(2_000_000), JSON, None, 413),
        Case("rating body 2 MB", "POST", rate, huge, JSON, expect=413),
        Case("rating body 2 MB, no auth", "POST", rate, huge, JSON, auth=None, expect=413),
        Case("rating body 8 MB chunked, no auth", "POST", rate, _chunks(8_000_000), JSON, auth=None, expect=413),
        Case("body 2 MB on a GET route", "GET", "/api/me", huge, JSON, expect=413),
        # Credentials.
        Case("no credentials", "GET", "/api/me", auth=None, expect=401),
        Case("bearer of 8 kB", "GET", "/api/me", headers={"authorization": "Bearer " + "t" * 8000}, auth=None,
             expect=401),
        Case("bearer without token", "GET", "/api/me", headers={"authorization": "Bearer"}, auth=None, expect=401),
        Case("basic auth", "GET", "/api/me", headers={"authorization": "Basic YTpi"}, auth=None, expect=401),
        Case("cookie garbage", "GET", "/api/me", headers={"cookie": 'vf_session="\\x7f;\\"; =; ;;'}, auth=None,
             expect=401),
        Case("cookie of 8 kB", "GET", "/api/me", headers={"cookie": "vf_session=" + "c" * 8000}, auth=None,
             expect=401),
        Case("cookie latin-1 bytes", "GET", "/api/me", headers={"cookie": b"vf_session=\xe9\xff"}, auth=None,
             expect=401),
        Case("rater on admin route", "GET", "/api/admin/campaigns", expect=403),
        # Paths.
        Case("static ../ traversal", "GET", "/static/../../etc/passwd", auth=None),
        Case("static %2f traversal", "GET", "/static/..%2f..%2f..%2fetc%2fpasswd", auth=None, expect=404),
        Case("static NUL", "GET", "/static/rate.js%00.css", auth=None, expect=404),
        Case("static html file", "GET", "/static/rate.html", auth=None, expect=404),
        Case("static name of 4 kB", "GET", "/static/" + "a" * 4000 + ".js", auth=None, expect=404),
        Case("video side traversal", "GET", f"/api/assignments/{assignment}/video/..%2f..%2fetc%2fpasswd",
             expect=404),
        Case("video side 'top'", "GET", f"/api/assignments/{assignment}/video/top", expect=404),
        Case("id of 12,000 digits", "GET", "/api/assignments/" + "9" * 12_000, expect=422),
        Case("URL of 12 kB, no auth", "GET", "/api/assignments/" + "9" * 12_000, auth=None, expect=401),
        Case("unknown route", "GET", "/api/nothing-here", auth=None, expect=404),
        Case("DELETE login", "DELETE", "/api/login", auth=None, expect=405),
        Case("PUT rating", "PUT", rate, _rating(), JSON, expect=405),
        # Range headers on a video.
        *(Case(f"range {value[:40]!r}", "GET", f"/api/assignments/{assignment}/video/left", headers={"range": value})
          for value in ("bytes=abc", "bytes=999999999-", "bytes=5-1", "bytes=0-1,0-1,0-1,0-1,0-1,0-1,0-1,0-1",
                        "bytes=-0", "items=0-1", "bytes=" + "0-1," * 2000 + "0-1")),
    ]
    # fmt: on


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory, store_backend: str, new_db_url: Callable[[str], str]
) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("raters_hostile")
    config = HumanEvalConfig.preset(
        "tiny", db_url=new_db_url(store_backend), gold_fraction=0.0, duplicate_fraction=0.0
    )
    videos = SyntheticGenerator(root / "videos")
    campaign = create_campaign(
        config,
        "hostile",
        [PromptSpec("p0", "a red square"), PromptSpec("p1", "a blue square")],
        [ModelSpec("A", "m-a"), ModelSpec("B", "m-b")],
        videos,
        config,
        root / "videos",
    )
    rater, rater_token = create_rater(config, "rater")
    other, _ = create_rater(config, "other")
    _, admin_token = create_rater(config, "admin", role="admin", password="admin-pass")
    assign_raters(config, campaign, [rater.id, other.id], config)
    import_sft_candidates(config, [SftCandidateSpec("clip-1", str(videos("clip", 0, "m-a")))])
    proc, base = spawn_raters_server(config.db_url)
    try:
        queue = httpx.get(
            f"{base}/api/assignments", headers={"Authorization": f"Bearer {rater_token}"}
        ).json()
        yield {
            "base": base,
            "tokens": {"rater": rater_token, "admin": admin_token},
            "ids": (queue[0]["assignment_id"], 1, campaign),
            "proc": proc,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _send(client: httpx.Client, case: Case, tokens: dict[str, str]) -> httpx.Response:
    headers = dict(case.headers)
    if case.auth is not None:
        headers["authorization"] = f"Bearer {tokens[case.auth]}"
    content = case.body() if callable(case.body) else case.body
    return client.request(case.method, case.path, content=content, headers=headers)


def test_hostile_inputs_get_4xx_never_5xx(app: dict) -> None:  # type: ignore[type-arg]
    assignment, candidate, campaign = app["ids"]
    cases = hostile_cases(assignment, candidate, campaign)
    outcomes: list[tuple[str, int, int]] = []
    with httpx.Client(base_url=str(app["base"]), timeout=60) as client:
        for case in cases:
            response = _send(client, case, app["tokens"])  # type: ignore[arg-type]
            outcomes.append((case.label, response.status_code, len(response.content)))
    print("\n".join(f"{status} {size:>7} B  {label}" for label, status, size in outcomes))
    server_errors = [o for o in outcomes if o[1] >= 500]
    assert not server_errors, server_errors
    unexpected = [
        (case.label, status, case.expect)
        for case, (_, status, _) in zip(cases, outcomes, strict=True)
        if case.expect is not None and status != case.expect
    ]
    assert not unexpected, unexpected
    echoing = [o for o in outcomes if o[1] >= 400 and o[2] > MAX_ERROR_BYTES]
    assert not echoing, echoing
    assert app["proc"].poll() is None  # type: ignore[attr-defined]
    assert len(cases) >= 90


def test_error_answers_are_short_and_readable(app: dict) -> None:  # type: ignore[type-arg]
    base, token = str(app["base"]), app["tokens"]["rater"]  # type: ignore[index]
    assignment = app["ids"][0]  # type: ignore[index]
    answer = httpx.post(
        f"{base}/api/assignments/{assignment}/ratings",
        content=b'{"client_submission_id": "' + b"x" * 900_000 + b'", "answers": {}}',
        headers={**JSON, "authorization": f"Bearer {token}"},
    )
    body = answer.json()
    assert answer.status_code == 422 and len(answer.content) < 1000
    assert body["detail"].startswith("body.client_submission_id: String should have at most 64 characters")
    assert all(set(entry) == {"loc", "msg", "type"} for entry in body["errors"])  # no "input" echoed
    nan = httpx.post(f"{base}/api/login", content=b'{"name": NaN, "password": "x"}', headers=JSON)
    assert nan.status_code == 400 and "NaN is not a JSON number" in nan.json()["detail"]
    big = httpx.get(f"{base}/api/assignments/{BIG}", headers={"authorization": f"Bearer {token}"})
    assert big.status_code == 422 and "less than or equal to 2147483647" in big.json()["detail"]


@pytest.fixture()
def strict_limits_app(tmp_path: Path) -> Iterator[str]:
    """A server with small login limits (3 per name, 8 per address, 60 s window) and a 64 kB body cap.

    The window is long so a loaded machine cannot let failures expire mid-test; expiry itself is
    tested on a controlled clock in test_raters_throttle.py."""
    db_url = f"sqlite:///{tmp_path / 'he.db'}"
    create_rater(db_url, "boss", role="admin", password="boss-pass")
    limits = RaterAppConfig(
        max_body_bytes=64_000, login_window_s=60.0, login_failures_per_name=3, login_failures_per_address=8
    )
    proc, base = spawn_raters_server(db_url, limits)
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_login_rate_limited_per_name_and_address(strict_limits_app: str) -> None:
    """Regression (issue 23, L3): login had no rate limit at all."""
    base = strict_limits_app

    def attempt(name: str, password: str = "wrong") -> httpx.Response:
        return httpx.post(f"{base}/api/login", json={"name": name, "password": password}, timeout=30)

    assert attempt("boss", "boss-pass").status_code == 200  # a success does not count
    for name in ("boss", "ghost"):  # a real account and an unknown name behave alike
        assert [attempt(name).status_code for _ in range(3)] == [401, 401, 401]
        locked = attempt(name, "boss-pass")
        assert locked.status_code == 429, locked.text
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert "too many failed logins" in locked.json()["detail"]
    # 6 failures from this address so far; 2 more (other names) reach its limit of 8.
    assert [attempt(f"n{i}").status_code for i in range(2)] == [401, 401]
    by_address = attempt("fresh-name")
    assert by_address.status_code == 429 and int(by_address.headers["retry-after"]) >= 1
    # The body limit is configurable too: this server takes 64 kB at most.
    assert httpx.post(f"{base}/api/login", content=b" " * 70_000, headers=JSON).status_code == 413

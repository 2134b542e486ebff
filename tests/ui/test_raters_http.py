"""The rater app over real HTTP: a uvicorn server process on 127.0.0.1, once with a SQLite (WAL)
store and once with a PostgreSQL server started by the suite (`store_backend`).

Load: 20 concurrent raters × 50 submissions each (plus a retry of every 5th submission) → every
rating stored exactly once. Auth: no/invalid token → 401; another rater's assignment → 404 for
reads, video and writes; a rater on admin routes → 403.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from evaluation.human_eval import (
    DIMENSIONS,
    HumanEvalConfig,
    ModelSpec,
    PromptSpec,
    assign_raters,
    create_campaign,
    create_rater,
    import_sft_candidates,
    open_store,
)
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.schema import Rating
from evaluation.human_eval.sft import SftCandidateSpec
from orchestration.raters_process import spawn_raters_server

N_RATERS, PER_RATER = 20, 50


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, store_backend: str, new_db_url: Callable[[str], str]
) -> Iterator[dict]:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("raters_http")
    db_url = new_db_url(store_backend)
    config = HumanEvalConfig.preset(
        "tiny", db_url=db_url, raters_per_pair=2, gold_fraction=0.0, duplicate_fraction=0.0
    )
    # 500 prompts × 1 model pair × k=2 = 1,000 assignments = 20 raters × 50. Videos are shared
    # files (one per model): this test is about the HTTP/storage layer, not the media.
    synthetic = SyntheticGenerator(root / "videos")
    files = {ref: synthetic("a test clip", 0, ref) for ref in ("m-a", "m-b-noisy")}
    prompts = [PromptSpec(f"p{i:03d}", f"prompt number {i}") for i in range(N_RATERS * PER_RATER // 2)]
    campaign_id = create_campaign(
        config, "load", prompts, [ModelSpec("A", "m-a"), ModelSpec("B", "m-b-noisy")],
        lambda prompt, seed, ref: files[ref], config, root / "videos",
    )  # fmt: skip
    tokens, ids = [], []
    for i in range(N_RATERS):
        identity, token = create_rater(config, f"rater{i:02d}")
        tokens.append(token)
        ids.append(identity.id)
    _, admin_token = create_rater(config, "boss", role="admin", password="boss-pass")
    assign_raters(config, campaign_id, ids, config)
    import_sft_candidates(config, [SftCandidateSpec("clip-1", str(files["m-a"]), tier="720p")])
    proc, base = spawn_raters_server(db_url)
    try:
        yield {"base": base, "tokens": tokens, "admin": admin_token, "db": db_url, "campaign": campaign_id}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_invalid_or_missing_token_is_refused(server: dict) -> None:  # type: ignore[type-arg]
    base = server["base"]
    assert httpx.get(f"{base}/api/assignments/next").status_code == 401
    assert httpx.get(f"{base}/api/assignments/next", headers=_auth("forged-token")).status_code == 401
    answers = dict.fromkeys(DIMENSIONS, "left")
    body = {"client_submission_id": "x", "answers": answers}
    assert (
        httpx.post(f"{base}/api/assignments/1/ratings", json=body, headers=_auth("nope")).status_code == 401
    )
    assert httpx.get(f"{base}/api/assignments/1/video/left").status_code == 401
    login = httpx.post(f"{base}/api/login", json={"name": "boss", "password": "wrong"})
    assert login.status_code == 401


def test_rater_cannot_touch_another_raters_assignments(server: dict) -> None:  # type: ignore[type-arg]
    base, (mine, theirs) = server["base"], server["tokens"][:2]
    their_queue = httpx.get(f"{base}/api/assignments", headers=_auth(theirs)).json()
    my_queue = httpx.get(f"{base}/api/assignments", headers=_auth(mine)).json()
    foreign = their_queue[0]["assignment_id"]
    assert foreign not in {a["assignment_id"] for a in my_queue}
    assert httpx.get(f"{base}/api/assignments/{foreign}", headers=_auth(mine)).status_code == 404
    assert httpx.get(f"{base}/api/assignments/{foreign}/video/left", headers=_auth(mine)).status_code == 404
    body = {"client_submission_id": uuid.uuid4().hex, "answers": dict.fromkeys(DIMENSIONS, "same")}
    assert (
        httpx.post(f"{base}/api/assignments/{foreign}/ratings", json=body, headers=_auth(mine)).status_code
        == 404
    )
    assert httpx.get(f"{base}/api/admin/campaigns", headers=_auth(mine)).status_code == 403
    # Blinded: nothing about models in what the rater gets.
    assert set(my_queue[0]) == {"assignment_id", "prompt", "position", "rated"}


def test_video_served_with_range_support(server: dict) -> None:  # type: ignore[type-arg]
    base, token = server["base"], server["tokens"][2]
    first = httpx.get(f"{base}/api/assignments", headers=_auth(token)).json()[0]["assignment_id"]
    full = httpx.get(f"{base}/api/assignments/{first}/video/left", headers=_auth(token))
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    assert full.content[4:8] == b"ftyp"  # an mp4 box header
    part = httpx.get(
        f"{base}/api/assignments/{first}/video/right", headers={**_auth(token), "Range": "bytes=0-99"}
    )
    assert part.status_code == 206 and len(part.content) == 100


def test_concurrent_retries_of_one_submission_store_one_row(server: dict) -> None:  # type: ignore[type-arg]
    base, token = server["base"], server["tokens"][3]
    target = httpx.get(f"{base}/api/assignments", headers=_auth(token)).json()[-1]["assignment_id"]
    body = {"client_submission_id": "same-click", "answers": dict.fromkeys(DIMENSIONS, "right")}

    def post(_: int) -> tuple[int, int]:
        response = httpx.post(
            f"{base}/api/assignments/{target}/ratings", json=body, headers=_auth(token), timeout=60
        )
        return response.status_code, response.json()["rating_id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(8)))
    assert sorted(code for code, _ in answers) == [200] * 7 + [201]
    assert len({rating_id for _, rating_id in answers}) == 1
    with open_store(server["db"]).session() as session:
        assert session.scalar(select(func.count(Rating.id)).where(Rating.assignment_id == target)) == 1


def _rate_all(base: str, token: str) -> tuple[int, int]:
    """Submit 50 ratings as one rater; every 5th submission is sent twice (a client retry)."""
    created = retried = 0
    with httpx.Client(base_url=base, headers=_auth(token), timeout=60) as client:
        queue = client.get("/api/assignments").json()
        assert len(queue) == PER_RATER
        for index, assignment in enumerate(queue):
            if assignment["rated"]:  # rated by the race test above
                continue
            body = {
                "client_submission_id": uuid.uuid4().hex,
                "answers": {
                    dim: ("left", "same", "right")[(index + i) % 3] for i, dim in enumerate(DIMENSIONS)
                },
                "elapsed_ms": 1000 + index,
            }
            url = f"/api/assignments/{assignment['assignment_id']}/ratings"
            response = client.post(url, json=body)
            assert response.status_code == 201, response.text
            created += 1
            if index % 5 == 0:
                again = client.post(url, json=body)
                assert again.status_code == 200 and again.json()["rating_id"] == response.json()["rating_id"]
                retried += 1
        progress = client.get("/api/progress").json()
        assert progress == {"done": PER_RATER, "total": PER_RATER}
    return created, retried


def test_load_20_raters_x_50_submissions_stored_exactly_once(server: dict) -> None:  # type: ignore[type-arg]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=N_RATERS) as pool:
        results = list(pool.map(lambda token: _rate_all(server["base"], token), server["tokens"]))
    seconds = time.monotonic() - started
    assert sum(created for created, _ in results) == N_RATERS * PER_RATER - 1  # one rated by the race test
    with open_store(server["db"]).session() as session:
        stored = session.scalar(select(func.count(Rating.id)))
        distinct = session.scalar(select(func.count(func.distinct(Rating.assignment_id))))
    assert stored == N_RATERS * PER_RATER  # retries did not add rows
    assert distinct == N_RATERS * PER_RATER  # one rating per assignment
    requests = sum(created + retried + 2 for created, retried in results)  # + queue and progress GETs
    print(
        f"\nload: {requests} requests from {N_RATERS} concurrent raters in {seconds:.1f} s ({server['db']})"
    )
    results_json = httpx.get(
        f"{server['base']}/api/admin/campaigns/{server['campaign']}/results",
        headers=_auth(server["admin"]),
        timeout=60,
    ).json()
    assert results_json["rated"] == results_json["assignments"] == N_RATERS * PER_RATER
    assert {row["Model"] for row in results_json["table3"]} == {"A", "B"}


def test_session_cookie_login_sft_and_admin(server: dict) -> None:  # type: ignore[type-arg]
    base = server["base"]
    with httpx.Client(base_url=base) as browser:
        login = browser.post("/api/login", json={"name": "boss", "password": "boss-pass"})
        assert login.status_code == 200 and "vf_session" in browser.cookies
        assert browser.get("/api/me").json()["role"] == "admin"
        created = browser.post("/api/admin/raters", json={"name": "new-rater", "password": "pw-1234"})
        assert created.status_code == 201 and created.json()["token"]
        candidate = browser.get("/api/sft/next").json()["candidate"]
        assert candidate["clip_id"] == "clip-1"
        body = {"client_submission_id": "d1", "decision": "accept", "criteria": ["aesthetic", "motion"]}
        first = browser.post(f"/api/sft/{candidate['candidate_id']}/decisions", json=body)
        retry = browser.post(f"/api/sft/{candidate['candidate_id']}/decisions", json=body)
        assert (first.status_code, retry.status_code) == (201, 200)
        assert browser.get("/api/sft/next").json() == {"candidate": None, "progress": {"done": 1, "total": 1}}
        assert [c["clip_id"] for c in browser.get("/api/admin/sft/accepted").json()] == ["clip-1"]
        assert browser.post("/api/logout").status_code == 200
        assert browser.get("/api/me").status_code == 401

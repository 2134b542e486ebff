"""The data layer: campaigns, balanced blinded assignments, idempotent append-only ratings, accounts,
prompt import and SFT decisions, on each backend: a real SQLite (WAL) file and a real PostgreSQL
server started by the suite (`store_backend`, `new_db_url` in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from evaluation.human_eval import (
    AUTO_RULE,
    BUILTIN_PROMPTS,
    DIMENSIONS,
    AuthError,
    CampaignError,
    HumanEvalConfig,
    ModelSpec,
    PromptSpec,
    accepted_sft_clips,
    assign_raters,
    authenticate,
    campaign_complete,
    campaign_results,
    create_campaign,
    create_rater,
    find_campaign,
    import_sft_candidates,
    load_prompts,
    login,
    open_store,
    select_sft_set,
)
from evaluation.human_eval.accounts import AccountError
from evaluation.human_eval.aggregate import load_judgments
from evaluation.human_eval.media import SyntheticGenerator
from evaluation.human_eval.prompts import PromptFileError
from evaluation.human_eval.ratings import (
    MAX_ELAPSED_MS,
    AssignmentNotFound,
    RatingError,
    assignment_video,
    next_assignment,
    rater_progress,
    rater_queue,
    submit_rating,
)
from evaluation.human_eval.schema import Assignment, Generation, Item, Rating
from evaluation.human_eval.sft import SftCandidateSpec, SftError, record_sft_decision
from evaluation.human_eval.store import AppendOnlyError, HumanEvalStoreError
from media.video import read_clip

MODELS = [ModelSpec("alpha", "models:/dit/1", "5s"), ModelSpec("beta", "models:/dit/2-noisy", "5s"),
          ModelSpec("gamma", "models:/dit/3")]  # fmt: skip
ANSWERS = dict.fromkeys(DIMENSIONS, "left")


@pytest.fixture()
def db_url(store_backend: str, new_db_url: Callable[[str], str]) -> str:
    """A new, empty store on this module's backend."""
    return new_db_url(store_backend)


@pytest.fixture(scope="module")
def campaign(
    tmp_path_factory: pytest.TempPathFactory, store_backend: str, new_db_url: Callable[[str], str]
) -> tuple[HumanEvalConfig, int, list[int]]:
    root = tmp_path_factory.mktemp("human_eval")
    config = HumanEvalConfig.preset(
        "tiny",
        db_url=new_db_url(store_backend),
        raters_per_pair=2,
        gold_fraction=0.25,
        duplicate_fraction=0.25,
    )
    campaign_id = create_campaign(
        config, "store-test", BUILTIN_PROMPTS[:4], MODELS, SyntheticGenerator(root / "videos"), config,
        root / "videos", generation_params={"steps": 2},
    )  # fmt: skip
    raters = [create_rater(config, f"rater{i}", password="secret-pw")[0].id for i in range(5)]
    assign_raters(config, campaign_id, raters, config)
    return config, campaign_id, raters


def test_campaign_generations_seeds_params_and_gold(campaign: tuple[HumanEvalConfig, int, list[int]]) -> None:
    config, campaign_id, _ = campaign
    with open_store(config).session() as session:
        generations = session.scalars(select(Generation).where(Generation.campaign_id == campaign_id)).all()
        items = session.scalars(select(Item).where(Item.campaign_id == campaign_id)).all()
        originals = [g for g in generations if g.degraded_from_id is None]
        assert len(originals) == 4 * 3  # prompts × models × 1 seed
        seeds_per_prompt = {g.prompt_id: set() for g in originals}
        for g in originals:
            seeds_per_prompt[g.prompt_id].add(g.seed)
            assert (
                g.params["steps"] == 2
                and g.params["seed"] == g.seed
                and g.params["model_ref"].startswith("models:")
            )
            assert len(read_clip(Path(g.video_path))) == 12
        assert all(len(seeds) == 1 for seeds in seeds_per_prompt.values())  # same seed for every model
        kinds = Counter(i.kind for i in items)
        assert kinds["regular"] == 4 * 3  # 4 prompts × C(3, 2) model pairs
        assert kinds["gold"] == 3  # round(0.25 × 12)
        for item in items:
            if item.kind == "gold":
                assert item.generation_b.degraded_from_id == item.generation_a_id
                assert item.gold_expected == {"motion_quality": "a", "visual_quality": "a", "overall": "a"}
    assert find_campaign(config, "store-test") == campaign_id
    assert find_campaign(config, str(campaign_id)) == campaign_id
    with pytest.raises(CampaignError, match="no campaign"):
        find_campaign(config, "nope")


def test_assignments_balanced_k_distinct_random_sides(
    campaign: tuple[HumanEvalConfig, int, list[int]],
) -> None:
    config, campaign_id, raters = campaign
    with open_store(config).session() as session:
        rows = session.scalars(select(Assignment).where(Assignment.campaign_id == campaign_id)).all()
    first = [a for a in rows if not a.is_duplicate]
    per_item = Counter(a.item_id for a in first)
    assert set(per_item.values()) == {2}  # every item (15) seen by exactly k = 2 raters ...
    assert all(len({a.rater_id for a in first if a.item_id == i}) == 2 for i in per_item)  # ... distinct
    loads = Counter(a.rater_id for a in first)
    assert (
        sorted(loads) == sorted(raters) and max(loads.values()) - min(loads.values()) <= 1
    )  # 30 / 5 = 6 each
    sides = Counter(a.left_is_a for a in first)
    assert sides[True] > 0 and sides[False] > 0
    duplicates = [a for a in rows if a.is_duplicate]
    assert duplicates
    for dup in duplicates:
        original = next(a for a in first if a.item_id == dup.item_id and a.rater_id == dup.rater_id)
        assert dup.left_is_a != original.left_is_a and dup.position > original.position
    for rater in raters:
        positions = sorted(a.position for a in rows if a.rater_id == rater)
        assert positions == list(range(len(positions)))
    with pytest.raises(CampaignError, match="already has assignments"):
        assign_raters(config, campaign_id, raters, config)


def test_rater_views_are_blinded(campaign: tuple[HumanEvalConfig, int, list[int]]) -> None:
    config, _, raters = campaign
    queue = rater_queue(config, raters[0])
    shown = repr([dataclasses.asdict(view) for view in queue])
    for model in MODELS:
        assert model.name not in shown and model.model_ref not in shown
    assert {field.name for field in dataclasses.fields(queue[0])} == {
        "assignment_id", "prompt", "position", "rated",
    }  # fmt: skip
    left = assignment_video(config, raters[0], queue[0].assignment_id, "left")
    right = assignment_video(config, raters[0], queue[0].assignment_id, "right")
    assert left != right and left.is_file() and right.is_file()


def test_ratings_idempotent_append_only_and_owned(campaign: tuple[HumanEvalConfig, int, list[int]]) -> None:
    config, campaign_id, raters = campaign
    rater, other = raters[1], raters[2]
    view = next_assignment(config, rater)
    assert view is not None
    first = submit_rating(config, rater, view.assignment_id, "sub-1", ANSWERS, elapsed_ms=1500)
    retry = submit_rating(config, rater, view.assignment_id, "sub-1", ANSWERS, elapsed_ms=1500)
    assert first.created and not retry.created and retry.rating_id == first.rating_id
    changed = submit_rating(config, rater, view.assignment_id, "sub-2", dict.fromkeys(DIMENSIONS, "right"))
    assert changed.created and changed.rating_id != first.rating_id
    store = open_store(config)
    with store.session() as session:
        assert (
            session.scalar(select(func.count(Rating.id)).where(Rating.assignment_id == view.assignment_id))
            == 2
        )
        left_is_a = session.get_one(Assignment, view.assignment_id).left_is_a
    judged = load_judgments(config, campaign_id).set_index("assignment_id")
    assert judged.loc[view.assignment_id, "overall"] == ("b" if left_is_a else "a")  # latest row wins
    assert rater_progress(config, rater).done == 1
    with pytest.raises(RatingError, match="another assignment"):
        other_view = rater_queue(config, rater)[1]
        submit_rating(config, rater, other_view.assignment_id, "sub-1", ANSWERS)
    with pytest.raises(AssignmentNotFound):
        submit_rating(config, other, view.assignment_id, "sub-x", ANSWERS)
    with pytest.raises(AssignmentNotFound):
        assignment_video(config, other, view.assignment_id, "left")
    with pytest.raises(RatingError, match="missing dimensions"):
        submit_rating(config, rater, view.assignment_id, "sub-3", {"overall": "left"})
    with pytest.raises(RatingError, match="choices"):
        submit_rating(config, rater, view.assignment_id, "sub-3", dict.fromkeys(DIMENSIONS, "up"))
    with pytest.raises(AppendOnlyError), store.session() as session:
        session.get_one(Rating, first.rating_id).overall = "same"
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("UPDATE ratings SET overall = 'same'"))
    with pytest.raises(Exception, match="append-only"), store.engine.begin() as connection:
        connection.execute(text("DELETE FROM ratings"))


def test_campaign_complete_and_results(tmp_path: Path, db_url: str) -> None:
    config = HumanEvalConfig.preset(
        "tiny", db_url=db_url, gold_fraction=0.0, duplicate_fraction=0.0, bootstrap_samples=20
    )
    campaign_id = create_campaign(
        config, "complete", BUILTIN_PROMPTS[:3], MODELS[:2], SyntheticGenerator(tmp_path), config, tmp_path
    )
    raters = [create_rater(config, f"r{i}")[0].id for i in range(2)]
    assign_raters(config, campaign_id, raters, config)
    assert not campaign_complete(config, campaign_id)
    with open_store(config).session() as session:
        rows = session.scalars(select(Assignment)).all()
        plan = [(a.id, a.rater_id, "left" if a.left_is_a else "right") for a in rows]  # alpha always wins
    for assignment_id, rater_id, side in plan:
        submit_rating(config, rater_id, assignment_id, uuid.uuid4().hex, dict.fromkeys(DIMENSIONS, side))
    assert campaign_complete(config, campaign_id)
    results = campaign_results(config, campaign_id)
    assert results.champion == "alpha"
    assert results.table3.set_index("Model").loc["alpha", "Overall preference"] == pytest.approx(100.0)
    gsb = results.gsb.set_index("dimension")
    assert gsb.loc["overall", "gsb"] == pytest.approx(1.0) and gsb.loc["overall", "n"] == 6
    assert results.agreement.set_index("dimension").loc["overall", "units"] == 3
    assert "Table 3" in results.to_markdown() and results.to_dict()["champion"] == "alpha"


def test_campaign_input_errors(tmp_path: Path, db_url: str) -> None:
    config = HumanEvalConfig.preset("tiny", db_url=db_url)
    with pytest.raises(CampaignError, match="at least two models"):
        create_campaign(
            config, "x", BUILTIN_PROMPTS, MODELS[:1], SyntheticGenerator(tmp_path), config, tmp_path
        )
    with pytest.raises(CampaignError, match="not a file"):
        create_campaign(config, "y", BUILTIN_PROMPTS[:1], MODELS, lambda p, s, m: tmp_path / "missing.mp4", config,
                        tmp_path)  # fmt: skip


def test_accounts_passwords_and_tokens(db_url: str, store_backend: str) -> None:
    db = db_url
    identity, api_token = create_rater(db, "ann", role="admin", password="hunter22")
    assert identity.is_admin
    assert authenticate(db, api_token) == identity
    same, session_token = login(db, "ann", "hunter22")
    assert same == identity and authenticate(db, session_token) == identity
    with pytest.raises(AuthError):
        login(db, "ann", "wrong")
    with pytest.raises(AuthError):
        authenticate(db, "not-a-token")
    with pytest.raises(AuthError):
        authenticate(db, None)
    with pytest.raises(AccountError, match="already exists"):
        create_rater(db, "ann")
    with pytest.raises(AccountError, match="role"):
        create_rater(db, "bob", role="owner")
    with open_store(db).engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM raters")).scalar_one()
        hashes = connection.execute(text("SELECT token_hash FROM rater_tokens")).scalars().all()
        if store_backend == "sqlite":
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
    assert stored.startswith("scrypt$") and "hunter22" not in stored
    assert api_token not in hashes and session_token not in hashes and len(hashes) == 2
    with pytest.raises(HumanEvalStoreError, match="in-memory"):
        open_store("sqlite://")
    with pytest.raises(HumanEvalStoreError, match="not a SQLAlchemy URL"):
        open_store("no url at all")


def test_failed_login_costs_the_same_for_unknown_names(db_url: str) -> None:
    """Regression (issue 23, L3): an unknown name failed in 2.6 ms, a known one in 67 ms (scrypt)."""
    create_rater(db_url, "known", password="right-password")
    create_rater(db_url, "token-only")  # no password: also a failure after one scrypt
    times: dict[str, list[float]] = {"known": [], "nobody": [], "token-only": []}
    for _ in range(7):  # interleaved, so load on the machine hits every name alike
        for name, spent in times.items():
            start = time.perf_counter()
            with pytest.raises(AuthError, match="unknown rater or wrong password"):
                login(db_url, name, "wrong-password")
            spent.append(time.perf_counter() - start)
    known = statistics.median(times["known"])
    for name in ("nobody", "token-only"):
        assert statistics.median(times[name]) > 0.6 * known, (name, times)


def test_elapsed_ms_out_of_range_is_refused(campaign: tuple[HumanEvalConfig, int, list[int]]) -> None:
    """Regression (issue 23, M3): an unbounded elapsed_ms overflowed the INTEGER column (a 500)."""
    config, _, raters = campaign
    view = rater_queue(config, raters[4])[0]
    for elapsed in (-1, MAX_ELAPSED_MS + 1, 2**63, 10**30):
        with pytest.raises(RatingError, match="elapsed_ms"):
            submit_rating(config, raters[4], view.assignment_id, f"e{elapsed}"[:64], ANSWERS, elapsed)
    assert submit_rating(config, raters[4], view.assignment_id, "e-max", ANSWERS, MAX_ELAPSED_MS).created
    assert rater_progress(config, raters[4]).done == 1


def test_prompt_import_csv_jsonl_and_errors(tmp_path: Path) -> None:
    csv_file = tmp_path / "p.csv"
    csv_file.write_text('key,text,category\nk1,"A cat, running",animals\n,A dog,\n')
    assert load_prompts(csv_file) == [
        PromptSpec("k1", "A cat, running", "animals"),
        PromptSpec("p0002", "A dog"),
    ]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"text": "A", "key": "a"}\n\n{"text": "B"}\n')
    assert [p.key for p in load_prompts(jsonl)] == ["a", "p0002"]
    (tmp_path / "dup.jsonl").write_text('{"text": "A", "key": "a"}\n{"text": "B", "key": "a"}\n')
    with pytest.raises(PromptFileError, match="line 2: duplicate key"):
        load_prompts(tmp_path / "dup.jsonl")
    (tmp_path / "bad.jsonl").write_text("{oops\n")
    with pytest.raises(PromptFileError, match="line 1: invalid JSON"):
        load_prompts(tmp_path / "bad.jsonl")
    (tmp_path / "p.txt").write_text("x")
    with pytest.raises(PromptFileError, match="unknown format"):
        load_prompts(tmp_path / "p.txt")
    assert len(BUILTIN_PROMPTS) == 12 and len({p.key for p in BUILTIN_PROMPTS}) == 12


def test_sft_decisions_majority_idempotent(tmp_path: Path, db_url: str) -> None:
    db = db_url
    specs = [SftCandidateSpec(f"clip-{i}", str(tmp_path / f"{i}.mp4"), tier="720p") for i in range(3)]
    assert import_sft_candidates(db, specs) == 3
    assert import_sft_candidates(db, specs) == 0
    a, b = (create_rater(db, name)[0].id for name in ("a", "b"))
    # clip-0: two accepts; clip-1: accept vs reject (tie → out); clip-2: b changes mind to accept.
    record_sft_decision(db, a, 1, "accept", "a1", ["aesthetic", "motion"])
    assert record_sft_decision(db, a, 1, "accept", "a1") == (1, False)  # retry
    record_sft_decision(db, b, 1, "accept", "b1")
    record_sft_decision(db, a, 2, "accept", "a2")
    record_sft_decision(db, b, 2, "reject", "b2", ["static"])
    record_sft_decision(db, b, 3, "reject", "b3")
    record_sft_decision(db, b, 3, "accept", "b4")
    accepted = accepted_sft_clips(db)
    assert [(c.clip_id, c.accepts, c.rejects) for c in accepted] == [("clip-0", 2, 0), ("clip-2", 1, 0)]
    with pytest.raises(SftError, match="criteria"):
        record_sft_decision(db, a, 1, "accept", "a9", ["static"])
    with pytest.raises(SftError, match="decision"):
        record_sft_decision(db, a, 1, "maybe", "a9")


def test_sft_set_is_what_people_accepted_and_a_rule_only_before_anyone_decides(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'he.db'}"
    specs = [SftCandidateSpec(f"clip-{i}", str(tmp_path / f"{i}.mp4"), tier="720p") for i in range(3)]
    nobody = select_sft_set(db, specs, auto_accept_unreviewed=False)
    assert nobody.table.num_rows == 0 and nobody.selected_by == "nobody yet" and nobody.new_candidates == 3
    standin = select_sft_set(db, specs, auto_accept_unreviewed=True)
    assert standin.table.column("clip_id").to_pylist() == ["clip-0", "clip-1", "clip-2"]
    assert standin.selected_by == AUTO_RULE and standin.new_candidates == 0 and standin.candidates == 3

    rater = create_rater(db, "annotator")[0].id
    record_sft_decision(db, rater, 2, "reject", "r1", ["static"])  # one decision ends the stand-in
    assert select_sft_set(db, specs, auto_accept_unreviewed=True).table.num_rows == 0
    record_sft_decision(db, rater, 1, "accept", "r2")
    people = select_sft_set(db, specs, auto_accept_unreviewed=True)
    assert people.table.to_pylist() == [
        {
            "clip_id": "clip-0",
            "video_path": str(tmp_path / "0.mp4"),
            "accepts": 1,
            "rejects": 0,
            "selected_by": "people",
        }
    ]

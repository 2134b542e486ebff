"""What a rater sees and submits: their own queue, blinded items, idempotent append-only ratings.

Blinding: views carry the assignment id, the prompt and "left"/"right" only; never model names,
generation ids, gold flags, duplicate flags or the campaign name (which may name the models). Ownership: every function takes the caller's rater
id and treats another rater's assignment exactly like a missing one (`AssignmentNotFound`), so ids
of other raters' work are not even confirmed to exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Row, Select, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from evaluation.human_eval.config import DIMENSIONS
from evaluation.human_eval.schema import CHOICES, Assignment, Item, Prompt, Rating
from evaluation.human_eval.store import DbLike, HumanEvalStore, open_store

#: Longest time on one item that a rating may record (7 days, well inside SQL INTEGER milliseconds).
MAX_ELAPSED_MS = 7 * 24 * 3600 * 1000


class AssignmentNotFound(LookupError):
    """No assignment with this id belongs to the calling rater."""


class RatingError(ValueError):
    """A submission is malformed (missing dimension, unknown choice, reused submission id)."""


@dataclass(frozen=True)
class AssignmentView:
    """One blinded item in a rater's queue."""

    assignment_id: int
    prompt: str
    position: int
    rated: bool


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class SubmitResult:
    rating_id: int
    created: bool  # False when this client_submission_id was already stored (a retry)


def _rated_clause() -> ColumnElement[bool]:
    return exists().where(Rating.assignment_id == Assignment.id)


def _views(rater_id: int) -> Select[int, str, int, bool]:
    return (
        select(Assignment.id, Prompt.text, Assignment.position, _rated_clause())
        .join(Item, Item.id == Assignment.item_id)
        .join(Prompt, Prompt.id == Item.prompt_id)
        .where(Assignment.rater_id == rater_id)
        .order_by(Assignment.campaign_id, Assignment.position)
    )


def _view(row: Row[int, str, int, bool]) -> AssignmentView:
    assignment_id, prompt, position, rated = row
    return AssignmentView(int(assignment_id), str(prompt), int(position), bool(rated))


def rater_queue(db: DbLike, rater_id: int) -> list[AssignmentView]:
    """The rater's assignments in queue order (across campaigns, oldest campaign first)."""
    with open_store(db).session() as session:
        return [_view(row) for row in session.execute(_views(rater_id)).all()]


def next_assignment(db: DbLike, rater_id: int) -> AssignmentView | None:
    """The first unrated assignment in the rater's queue, or None when they are done."""
    with open_store(db).session() as session:
        row = session.execute(_views(rater_id).where(~_rated_clause()).limit(1)).first()
        return None if row is None else _view(row)


def get_assignment(db: DbLike, rater_id: int, assignment_id: int) -> AssignmentView:
    """One of the rater's assignments; `AssignmentNotFound` for anyone else's."""
    with open_store(db).session() as session:
        _own(session, rater_id, assignment_id)
        row = session.execute(_views(rater_id).where(Assignment.id == assignment_id)).one()
        return _view(row)


def assignment_video(db: DbLike, rater_id: int, assignment_id: int, side: str) -> Path:
    """The file shown on `side` ('left' | 'right') of the rater's assignment."""
    if side not in ("left", "right"):
        raise RatingError(f"side must be 'left' or 'right', got {side!r}")
    with open_store(db).session() as session:
        assignment = _own(session, rater_id, assignment_id)
        item = assignment.item
        show_a = assignment.left_is_a == (side == "left")
        return Path((item.generation_a if show_a else item.generation_b).video_path)


def rater_progress(db: DbLike, rater_id: int) -> Progress:
    with open_store(db).session() as session:
        total = session.scalar(select(func.count(Assignment.id)).where(Assignment.rater_id == rater_id))
        done = session.scalar(
            select(func.count(Assignment.id)).where(Assignment.rater_id == rater_id, _rated_clause())
        )
        return Progress(done=int(done or 0), total=int(total or 0))


def submit_rating(
    db: DbLike,
    rater_id: int,
    assignment_id: int,
    client_submission_id: str,
    answers: dict[str, str],
    elapsed_ms: int | None = None,
) -> SubmitResult:
    """Append one rating. Idempotent per (rater, client_submission_id): a retry returns the stored row.

    `answers` maps each of `DIMENSIONS` to 'left' | 'same' | 'right' (as displayed); `elapsed_ms`
    is 0 … `MAX_ELAPSED_MS` or None. Re-rating an assignment with a new submission id appends a new
    row; aggregation uses the latest one.
    """
    if not client_submission_id or len(client_submission_id) > 64:
        raise RatingError("client_submission_id must be 1–64 characters")
    if elapsed_ms is not None and not 0 <= elapsed_ms <= MAX_ELAPSED_MS:
        raise RatingError(f"elapsed_ms must be 0 … {MAX_ELAPSED_MS} (7 days) or None")
    missing = [dim for dim in DIMENSIONS if dim not in answers]
    if missing:
        raise RatingError(f"rating of assignment {assignment_id}: missing dimensions {missing}")
    unknown = [dim for dim in answers if dim not in DIMENSIONS]
    if unknown:
        raise RatingError(f"rating of assignment {assignment_id}: unknown dimensions {unknown}")
    bad = {dim: value for dim, value in answers.items() if value not in CHOICES}
    if bad:
        raise RatingError(
            f"rating of assignment {assignment_id}: choices must be one of {CHOICES}, got {bad}"
        )
    store = open_store(db)
    existing = _find_submission(store, rater_id, client_submission_id, assignment_id)
    if existing is not None:
        return SubmitResult(existing, created=False)
    try:
        with store.session(write=True) as session:
            _own(session, rater_id, assignment_id)
            rating = Rating(
                assignment_id=assignment_id,
                rater_id=rater_id,
                client_submission_id=client_submission_id,
                elapsed_ms=elapsed_ms,
                **{dim: answers[dim] for dim in DIMENSIONS},
            )
            session.add(rating)
            session.flush()
            return SubmitResult(rating.id, created=True)
    except IntegrityError:
        # A concurrent retry of the same submission won the race; the unique key kept one row.
        existing = _find_submission(store, rater_id, client_submission_id, assignment_id)
        if existing is None:
            raise
        return SubmitResult(existing, created=False)


def _find_submission(
    store: HumanEvalStore, rater_id: int, client_submission_id: str, assignment_id: int
) -> int | None:
    with store.session() as session:
        row = session.scalar(
            select(Rating).where(
                Rating.rater_id == rater_id, Rating.client_submission_id == client_submission_id
            )
        )
        if row is None:
            return None
        if row.assignment_id != assignment_id:
            raise RatingError(
                f"client_submission_id {client_submission_id!r} was already used for another assignment"
            )
        return int(row.id)


def _own(session: Session, rater_id: int, assignment_id: int) -> Assignment:
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.rater_id != rater_id:
        raise AssignmentNotFound(f"assignment {assignment_id} is not in your queue")
    return assignment


__all__ = [
    "MAX_ELAPSED_MS",
    "AssignmentNotFound",
    "AssignmentView",
    "Progress",
    "RatingError",
    "SubmitResult",
    "assignment_video",
    "get_assignment",
    "next_assignment",
    "rater_progress",
    "rater_queue",
    "submit_rating",
]

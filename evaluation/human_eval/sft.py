"""SFT selection: annotators accept or reject `sft_candidates` clips; accepted clips form `sft_set`.

Criteria (SPEC.md §2, paper §3 "SFT set"): clips are kept for aesthetics (composition, lighting,
colour, sharpness) and motion (clear, smooth, meaningful motion; not static, not slow motion).
Decisions are append-only; an annotator's latest decision counts, and a clip is accepted when its
annotators' accepts outnumber their rejects (a tie rejects: SFT data should be unambiguous).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from evaluation.human_eval.schema import SftCandidate, SftDecision
from evaluation.human_eval.store import DbLike, open_store

DECISIONS: tuple[str, ...] = ("accept", "reject")
ACCEPT_CRITERIA: dict[str, str] = {
    "aesthetic": "Aesthetics: pleasing composition, lighting and colour; sharp, clean frames",
    "motion": "Motion: clear, smooth, meaningful movement (not static, not slow motion)",
}
REJECT_REASONS: dict[str, str] = {
    "low_quality": "Blurry, noisy or compressed",
    "static": "Static or slow motion",
    "overlay": "Text, watermark or black borders",
    "artifacts": "Cuts, flicker or broken frames",
    "unaesthetic": "Unappealing composition or lighting",
}


#: The `sft_set` table: one row per clip in the SFT set.
SFT_SET_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("accepts", pa.int32(), nullable=False),
        pa.field("rejects", pa.int32(), nullable=False),
        pa.field("selected_by", pa.string(), nullable=False),  # "people" or the rule that stood in
    ]
)
#: Who selected the SFT set while no person has decided on any candidate (tiny-profile demos).
AUTO_RULE = "rule: every candidate (no person has reviewed any yet; tiny profile)"


class SftError(ValueError):
    """A candidate row or decision is malformed (empty clip id, unknown decision or reason)."""


@dataclass(frozen=True)
class SftCandidateSpec:
    """One clip proposed by the top tier (a row of the `sft_candidates` table)."""

    clip_id: str
    video_path: str
    tier: str | None = None
    aesthetic_score: float | None = None
    motion_score: float | None = None
    caption: str | None = None


@dataclass(frozen=True)
class SftCandidateView:
    candidate_id: int
    clip_id: str
    tier: str | None
    caption: str | None
    aesthetic_score: float | None
    motion_score: float | None


@dataclass(frozen=True)
class SftClip:
    clip_id: str
    video_path: str
    accepts: int
    rejects: int


def import_sft_candidates(db: DbLike, candidates: Iterable[SftCandidateSpec]) -> int:
    """Add candidates whose clip id is new; returns how many were added (re-imports are no-ops)."""
    added = 0
    with open_store(db).session(write=True) as session:
        known = set(session.scalars(select(SftCandidate.clip_id)))
        for spec in candidates:
            if not spec.clip_id:
                raise SftError(f"sft candidate with video {spec.video_path!r} has an empty clip_id")
            if spec.clip_id in known:
                continue
            known.add(spec.clip_id)
            session.add(
                SftCandidate(
                    clip_id=spec.clip_id,
                    video_path=str(spec.video_path),
                    tier=spec.tier,
                    aesthetic_score=spec.aesthetic_score,
                    motion_score=spec.motion_score,
                    caption=spec.caption,
                )
            )
            added += 1
    return added


def next_sft_candidate(db: DbLike, rater_id: int) -> SftCandidateView | None:
    """The oldest candidate this annotator has not decided yet, or None."""
    decided = exists().where(SftDecision.candidate_id == SftCandidate.id, SftDecision.rater_id == rater_id)
    with open_store(db).session() as session:
        row = session.scalar(select(SftCandidate).where(~decided).order_by(SftCandidate.id).limit(1))
        if row is None:
            return None
        return SftCandidateView(
            row.id, row.clip_id, row.tier, row.caption, row.aesthetic_score, row.motion_score
        )


def sft_candidate_video(db: DbLike, candidate_id: int) -> Path:
    with open_store(db).session() as session:
        row = session.get(SftCandidate, candidate_id)
        if row is None:
            raise LookupError(f"sft candidate {candidate_id} does not exist")
        return Path(row.video_path)


def sft_progress(db: DbLike, rater_id: int) -> tuple[int, int]:
    """(candidates this annotator decided, all candidates)."""
    with open_store(db).session() as session:
        total = session.scalar(select(func.count(SftCandidate.id))) or 0
        done = (
            session.scalar(
                select(func.count(func.distinct(SftDecision.candidate_id))).where(
                    SftDecision.rater_id == rater_id
                )
            )
            or 0
        )
        return int(done), int(total)


def record_sft_decision(
    db: DbLike,
    rater_id: int,
    candidate_id: int,
    decision: str,
    client_submission_id: str,
    criteria: Iterable[str] = (),
    note: str = "",
) -> tuple[int, bool]:
    """Append a decision; idempotent per (annotator, client_submission_id). Returns (row id, created)."""
    if decision not in DECISIONS:
        raise SftError(f"decision must be one of {DECISIONS}, got {decision!r}")
    criteria = list(criteria)
    allowed = ACCEPT_CRITERIA if decision == "accept" else REJECT_REASONS
    if unknown := [c for c in criteria if c not in allowed]:
        raise SftError(f"{decision} criteria {unknown} are not among {sorted(allowed)}")
    if not client_submission_id or len(client_submission_id) > 64:
        raise SftError("client_submission_id must be 1–64 characters")
    store = open_store(db)

    def existing() -> int | None:
        with store.session(write=True) as session:
            return session.scalar(
                select(SftDecision.id).where(
                    SftDecision.rater_id == rater_id, SftDecision.client_submission_id == client_submission_id
                )
            )

    if (found := existing()) is not None:
        return found, False
    reasons: dict[str, Any] = {"criteria": criteria, "note": note}
    try:
        with store.session() as session:
            if session.get(SftCandidate, candidate_id) is None:
                raise LookupError(f"sft candidate {candidate_id} does not exist")
            row = SftDecision(
                candidate_id=candidate_id,
                rater_id=rater_id,
                client_submission_id=client_submission_id,
                decision=decision,
                reasons=reasons,
            )
            session.add(row)
            session.flush()
            return row.id, True
    except IntegrityError:
        if (found := existing()) is None:
            raise
        return found, False


def accepted_sft_clips(db: DbLike) -> list[SftClip]:
    """Clips whose annotators' latest decisions hold more accepts than rejects (the `sft_set`)."""
    with open_store(db).session() as session:
        rows = session.execute(
            select(SftDecision.candidate_id, SftDecision.rater_id, SftDecision.decision).order_by(
                SftDecision.id
            )
        ).all()
        latest: dict[tuple[int, int], str] = {}
        for candidate_id, rater_id, decision in rows:
            latest[(candidate_id, rater_id)] = decision
        tally: dict[int, list[int]] = {}
        for (candidate_id, _), decision in latest.items():
            counts = tally.setdefault(candidate_id, [0, 0])
            counts[0 if decision == "accept" else 1] += 1
        accepted = [cid for cid, (acc, rej) in tally.items() if acc > rej]
        candidates = session.scalars(
            select(SftCandidate).where(SftCandidate.id.in_(accepted)).order_by(SftCandidate.id)
        ).all()
        return [SftClip(c.clip_id, c.video_path, tally[c.id][0], tally[c.id][1]) for c in candidates]


def any_sft_decision(db: DbLike) -> bool:
    """Whether any annotator has accepted or rejected any candidate yet."""
    with open_store(db).session() as session:
        return bool(session.scalar(select(func.count(SftDecision.id))))


@dataclass(frozen=True)
class SftSelection:
    """The SFT set (`table`, rows of SFT_SET_SCHEMA) and how it came about."""

    table: pa.Table
    candidates: int
    new_candidates: int

    @property
    def selected_by(self) -> str:
        """`people`, the rule that stood in for them (AUTO_RULE), or `nobody yet` (an empty set)."""
        return str(self.table.column("selected_by")[0]) if self.table.num_rows else "nobody yet"


def select_sft_set(
    db: DbLike, candidates: Sequence[SftCandidateSpec], auto_accept_unreviewed: bool
) -> SftSelection:
    """Queue the new `candidates` for review and return the SFT set as it stands.

    The set is the clips people accepted (`accepted_sft_clips`). Only while nobody has decided on
    any candidate and `auto_accept_unreviewed` is on, every candidate stands in, labelled AUTO_RULE,
    so a demo can train before anyone has opened the rater app.
    """
    added = import_sft_candidates(db, candidates)
    if auto_accept_unreviewed and not any_sft_decision(db):
        chosen = [(c.clip_id, c.video_path, 0, 0, AUTO_RULE) for c in candidates]
    else:
        chosen = [(c.clip_id, c.video_path, c.accepts, c.rejects, "people") for c in accepted_sft_clips(db)]
    rows = [dict(zip(SFT_SET_SCHEMA.names, row, strict=True)) for row in chosen]
    return SftSelection(pa.Table.from_pylist(rows, schema=SFT_SET_SCHEMA), len(candidates), added)

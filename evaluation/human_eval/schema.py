"""SQLAlchemy 2 models of the human-evaluation store (SQLite WAL embedded, Postgres at scale).

Entity map:
    Rater ─< RaterToken                       accounts; tokens/passwords are stored hashed only
    Campaign ─< ModelVersion, Prompt ─< Generation (prompt × model × seed, with params)
    Campaign ─< Item (generation A vs B; regular or gold with expected answers)
    Item ─< Assignment (one rater, recorded left/right order, queue position, duplicate flag)
    Assignment ─< Rating                      append-only; latest row per assignment is the answer
    SftCandidate ─< SftDecision               append-only accept/reject per annotator

`ratings` and `sft_decisions` are append-only: the ORM refuses updates/deletes (see `store.py`) and
the database refuses them too (triggers created with the tables on SQLite and Postgres).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Answers a rater can give per dimension, relative to what they saw.
CHOICES: tuple[str, ...] = ("left", "same", "right")
#: Canonical answers relative to the item's generation A ("a" = A better).
CANONICAL: tuple[str, ...] = ("a", "same", "b")
ROLES: tuple[str, ...] = ("rater", "admin")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class Rater(Base):
    __tablename__ = "raters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="rater")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RaterToken(Base):
    """A bearer credential: a long-lived API token or a login session. Only its SHA-256 is stored."""

    __tablename__ = "rater_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    rater: Mapped[Rater] = relationship()


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    models: Mapped[list[ModelVersion]] = relationship(back_populates="campaign", order_by="ModelVersion.id")
    prompts: Mapped[list[Prompt]] = relationship(back_populates="campaign", order_by="Prompt.id")


class ModelVersion(Base):
    """A model under comparison; `model_ref` is what the generator loads (e.g. a registry URI)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    model_ref: Mapped[str] = mapped_column(String(500))
    duration: Mapped[str | None] = mapped_column(String(32))

    campaign: Mapped[Campaign] = relationship(back_populates="models")


class Prompt(Base):
    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))

    campaign: Mapped[Campaign] = relationship(back_populates="prompts")


class Generation(Base):
    """One video: `prompt` × `model` × `seed`, or (for gold items) a degraded copy of another."""

    __tablename__ = "generations"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    seed: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    video_path: Mapped[str] = mapped_column(String(1000))
    degraded_from_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    prompt: Mapped[Prompt] = relationship()
    model_version: Mapped[ModelVersion] = relationship()


class Item(Base):
    """A comparison of generation A vs B for one prompt. Gold items carry the expected answers."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id"))
    generation_a_id: Mapped[int] = mapped_column(ForeignKey("generations.id"))
    generation_b_id: Mapped[int] = mapped_column(ForeignKey("generations.id"))
    kind: Mapped[str] = mapped_column(String(16), default="regular")  # regular | gold
    # {dimension: "a" | "same" | "b"} for gold items; dimensions without a clear answer are absent.
    gold_expected: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    prompt: Mapped[Prompt] = relationship()
    generation_a: Mapped[Generation] = relationship(foreign_keys=[generation_a_id])
    generation_b: Mapped[Generation] = relationship(foreign_keys=[generation_b_id])


class Assignment(Base):
    """One item in one rater's queue. `left_is_a` records the randomised display order."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("item_id", "rater_id", "is_duplicate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    left_is_a: Mapped[bool] = mapped_column(Boolean)
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    item: Mapped[Item] = relationship()
    rater: Mapped[Rater] = relationship()


class Rating(Base):
    """One submission (append-only). Values are 'left' | 'same' | 'right' as the rater saw them."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("rater_id", "client_submission_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    client_submission_id: Mapped[str] = mapped_column(String(64))
    text_alignment: Mapped[str] = mapped_column(String(8))
    motion_quality: Mapped[str] = mapped_column(String(8))
    visual_quality: Mapped[str] = mapped_column(String(8))
    overall: Mapped[str] = mapped_column(String(8))
    elapsed_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    assignment: Mapped[Assignment] = relationship()


class SftCandidate(Base):
    """A clip proposed by the top tier for the SFT set (from the `sft_candidates` asset)."""

    __tablename__ = "sft_candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    clip_id: Mapped[str] = mapped_column(String(200), unique=True)
    video_path: Mapped[str] = mapped_column(String(1000))
    tier: Mapped[str | None] = mapped_column(String(16))
    aesthetic_score: Mapped[float | None] = mapped_column(Float)
    motion_score: Mapped[float | None] = mapped_column(Float)
    caption: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SftDecision(Base):
    """One annotator's accept/reject of a candidate (append-only; their latest row counts)."""

    __tablename__ = "sft_decisions"
    __table_args__ = (UniqueConstraint("rater_id", "client_submission_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("sft_candidates.id"), index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id"), index=True)
    client_submission_id: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(8))  # accept | reject
    reasons: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    candidate: Mapped[SftCandidate] = relationship()


APPEND_ONLY_TABLES: tuple[str, ...] = ("ratings", "sft_decisions")

# The database itself refuses UPDATE/DELETE on append-only tables, so a raw SQL client cannot
# silently rewrite history either.
for _table in APPEND_ONLY_TABLES:
    for _op in ("UPDATE", "DELETE"):
        event.listen(
            Base.metadata.tables[_table],
            "after_create",
            DDL(
                f"CREATE TRIGGER IF NOT EXISTS {_table}_no_{_op.lower()} BEFORE {_op} ON {_table} "
                f"BEGIN SELECT RAISE(ABORT, '{_table} is append-only'); END"
            ).execute_if(dialect="sqlite"),
        )
    event.listen(
        Base.metadata.tables[_table],
        "after_create",
        DDL(
            "CREATE OR REPLACE FUNCTION vf_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION '%% is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql; "
            f"CREATE TRIGGER {_table}_append_only BEFORE UPDATE OR DELETE ON {_table} "
            "FOR EACH ROW EXECUTE FUNCTION vf_append_only()"
        ).execute_if(dialect="postgresql"),
    )

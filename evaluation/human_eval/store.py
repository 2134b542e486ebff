"""Opening the human-eval database: one engine per URL, SQLite in WAL mode, append-only guards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from evaluation.human_eval.config import HumanEvalConfig
from evaluation.human_eval.schema import Base, Rating, SftDecision


class HumanEvalStoreError(ValueError):
    """The database URL is malformed or its location cannot be used."""


class AppendOnlyError(RuntimeError):
    """Code tried to update or delete a row of an append-only table (ratings, SFT decisions)."""


class HumanEvalStore:
    """An engine plus a session factory for one database URL. Thread-safe; share one per process."""

    def __init__(self, db_url: str) -> None:
        try:
            url = make_url(db_url)
        except ArgumentError as error:
            raise HumanEvalStoreError(f"human-eval db url {db_url!r} is not a SQLAlchemy URL") from error
        self.url = db_url
        connect_args: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # Many web threads write at once: wait for the lock instead of failing fast.
            connect_args = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(db_url, connect_args=connect_args, pool_pre_ping=True)
        if url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets raters read while others write; NORMAL sync is durable across app crashes in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@event.listens_for(Session, "before_flush")
def _refuse_append_only_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Rating | SftDecision) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError(f"{type(obj).__tablename__} row {obj.id} is append-only: insert a new row")


_STORES: dict[str, HumanEvalStore] = {}
_STORES_LOCK = threading.Lock()

DbLike = str | HumanEvalConfig | HumanEvalStore


def open_store(db: DbLike) -> HumanEvalStore:
    """The shared store for a URL, config or store (engines are cached per URL in this process)."""
    if isinstance(db, HumanEvalStore):
        return db
    url = db.db_url if isinstance(db, HumanEvalConfig) else db
    with _STORES_LOCK:
        if url not in _STORES:
            _STORES[url] = HumanEvalStore(url)
        return _STORES[url]

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
            if not url.database or url.database == ":memory:":
                # Each connection to :memory: is a different, empty database: refuse rather than lose data.
                raise HumanEvalStoreError(
                    f"human-eval db url {db_url!r} is an in-memory SQLite database; use a file path"
                )
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # Many web threads write at once: wait for the lock instead of failing fast.
            connect_args = {"timeout": 30, "check_same_thread": False}
        self.engine: Engine = create_engine(db_url, connect_args=connect_args, pool_pre_ping=True)
        # SQLite: a deferred transaction that reads and then writes fails at once (SQLITE_BUSY, no
        # waiting) when another writer committed in between. Write sessions therefore run on a second
        # engine whose transactions start with BEGIN IMMEDIATE and so queue on the busy timeout.
        self.write_engine: Engine = self.engine
        if url.get_backend_name() == "sqlite":
            self.write_engine = create_engine(db_url, connect_args=connect_args, pool_pre_ping=True)
            for engine, begin in ((self.engine, "BEGIN"), (self.write_engine, "BEGIN IMMEDIATE")):
                event.listen(engine, "connect", _sqlite_pragmas)
                event.listen(engine, "begin", _begin_with(begin))
        Base.metadata.create_all(self.write_engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A session that commits on success and rolls back on error; `write=True` for inserts."""
        with (self._write_sessions if write else self._sessions)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
        self.write_engine.dispose()


def _begin_with(statement: str) -> Any:
    def begin(connection: Any) -> None:
        connection.exec_driver_sql(statement)

    return begin


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN instead of the sqlite3 module's implicit one.
    dbapi_connection.isolation_level = None
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

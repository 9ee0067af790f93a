"""Database platform: engine, sessions, declarative ``Base``, the ``transaction`` helper.

SQLite (embedded default, WAL mode, a file under the data dir) and PostgreSQL (production)
are both first-class: every database test runs on both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored in UTC on both backends.

    SQLite keeps no offset, so values are normalised to UTC on the way in and marked
    UTC on the way out; naive datetimes are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; HealthGrid stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and real transactional BEGIN."""
    parsed = make_url(url)
    # Pools sized for the server's thread pool: a connection checked in beyond pool_size is
    # closed, and reopening one per request under load (plus SQLite's PRAGMAs) was measured
    # to cost more than the query itself (bench/fhir_read_search.py).
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=30)
    in_memory = not parsed.database or parsed.database == ":memory:"
    if not in_memory:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    writer = threading.Lock()
    engine = create_engine(
        url, echo=echo,
        connect_args={"check_same_thread": False, "timeout": 30, "factory": _queued_connection(writer)},
        **({} if in_memory else {"pool_size": 20, "max_overflow": 20}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not pysqlite, decide where transactions begin, so that
        # SAVEPOINT and rollback behave as documented (SQLAlchemy "pysqlite" notes).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # IMMEDIATE: take the write lock at the start. A deferred transaction that has read
        # cannot write once another connection has committed (SQLITE_BUSY_SNAPSHOT, no
        # waiting), and since every access to personal data writes an audit row, most
        # transactions read and then write. Serialising them is the embedded database's
        # price; PostgreSQL, the production database, runs them concurrently. A reader that
        # never writes may ask for DEFERRED: engine.execution_options(sqlite_begin="DEFERRED").
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode == "DEFERRED":
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        # Threads of this process queue on a lock instead of SQLite's busy handler, which
        # polls with sleeps and gave reads a p99 of 1.4 s at 16 connections
        # (bench/fhir_read_search.py); other processes still meet the busy timeout.
        if not writer.acquire(timeout=30):
            raise sqlite3.OperationalError("database is locked: waited 30 s for another transaction")
        conn.connection.dbapi_connection.holds_writer = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            conn.connection.dbapi_connection.release_writer()
            raise

    return engine


def _queued_connection(writer: threading.Lock) -> type[sqlite3.Connection]:
    """A sqlite3 connection that gives the process's writer lock back when its
    transaction ends (the lock is taken in the engine's ``begin`` event)."""

    class QueuedConnection(sqlite3.Connection):
        holds_writer = False

        def release_writer(self) -> None:
            if self.holds_writer:
                self.holds_writer = False
                writer.release()

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self.release_writer()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self.release_writer()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self.release_writer()

    return QueuedConnection


def make_sessionmaker(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """``info`` is copied into every session: the security context's keyring and settings
    travel there, so service functions need no global state."""
    return sessionmaker(bind=engine, expire_on_commit=False, info=info)


_DEPTH = "healthgrid_tx_depth"
_AFTER_ROLLBACK = "healthgrid_after_rollback"
_AFTER_COMMIT = "healthgrid_after_commit"


_TX_CACHE = "healthgrid_tx_cache"


def tx_cache(session: Session) -> dict[Any, Any]:
    """A dict that lives as long as the outermost ``transaction()``: facts that cannot change
    under the caller during one use case (where an organisation sits) are looked up once."""
    return session.info.setdefault(_TX_CACHE, {})


def in_transaction(session: Session) -> bool:
    return session.info.get(_DEPTH, 0) > 0


def after_commit(session: Session, fn: Callable[[Session], None]) -> None:
    """Run ``fn(session)`` once the outermost ``transaction()`` has committed (outside it:
    ``fn`` opens its own). Registering the same function twice runs it once."""
    hooks = session.info.setdefault(_AFTER_COMMIT, [])
    if fn not in hooks:
        hooks.append(fn)


def after_rollback(session: Session, fn: Callable[[Session], None]) -> None:
    """Run ``fn(session)`` in a new transaction once the current one has rolled back: a
    refused action is recorded although everything the action did is undone."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(fn)


@contextmanager
def transaction(session: Session) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    Joins an enclosing ``transaction()`` on the same session, so a service that calls
    another context's service stays in one transaction.
    """
    depth = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    committed = False
    try:
        yield session
        if depth == 0:
            session.commit()
            committed = True
    except BaseException:
        if depth == 0:
            session.info.pop(_AFTER_COMMIT, None)
            session.rollback()
            session.info[_DEPTH] = 0
            _run_after_rollback(session)
        raise
    finally:
        session.info[_DEPTH] = depth
        if depth == 0:
            session.info.pop(_AFTER_ROLLBACK, None)
            session.info.pop(_TX_CACHE, None)
    # After the commit, outside it: what a hook does cannot undo what was acknowledged.
    if committed:
        for fn in session.info.pop(_AFTER_COMMIT, []):
            fn(session)


def _run_after_rollback(session: Session) -> None:
    hooks = session.info.pop(_AFTER_ROLLBACK, [])
    if not hooks:
        return
    with transaction(session):
        for fn in hooks:
            fn(session)

"""Database engine, sessions and migrations: one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import lru_cache

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.core.config import REPO_ROOT, get_settings

# Row ids and ranks are INTEGER columns (int4 on PostgreSQL): a larger number names no row, and
# handing it to the driver fails (SQLite overflows past int64), so inputs are checked against it.
MAX_ROW_ID = 2**31 - 1


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets the worker write scores while the web process reads; FKs are off by default."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    _use_wal(cursor)
    cursor.close()


def _use_wal(cursor, attempts: int = 600) -> None:
    """Switch a new database file to WAL (the mode then stays with the file).

    The switch needs the file to itself. When two new connections switch at once (a worker
    starting beside the web process, two pooled threads), SQLite refuses one of them with
    "database is locked" without waiting out the busy timeout, to avoid a deadlock; so a
    refused switch is retried until it, or the other connection's, has taken effect.
    """
    for attempt in range(attempts):
        if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.sqlalchemy_url)


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def new_session() -> Session:
    return _session_factory()()


@contextmanager
def session_scope() -> Iterator[Session]:
    """A unit of work: commit on success, roll back everything on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def get_db() -> AsyncIterator[Session]:
    """FastAPI dependency: one session per request, rolled back unless a route commits.

    Async, though the session is used from the route's worker thread: a sync dependency costs
    two more hops between the event loop and the thread pool per request (entry and exit),
    which under load were a third of the queue's latency. Opening a session does no I/O, nor
    does closing one whose route committed; a rollback still to send goes to a thread, so the
    event loop never waits on the database.
    """
    session = new_session()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().sqlalchemy_url)
    return cfg


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest revision (the server runs this on start)."""
    settings = get_settings()
    if (url or settings.sqlalchemy_url).startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def refresh_planner_stats(session: Session) -> None:
    """Fresh planner statistics after a bulk write (a model version's predictions).

    Without them SQLite (which never analyzes by itself) walks every queued item to find the
    next one instead of following the suspicion-rank index; PostgreSQL's autovacuum would get
    there, but only later. ``analysis_limit`` keeps SQLite's pass to a sample.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=1000"))
        session.execute(text("ANALYZE"))
    else:
        session.execute(text("ANALYZE items, predictions"))

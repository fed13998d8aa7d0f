"""Engine construction: SQLite (default) or PostgreSQL, tuned for many writers."""

from __future__ import annotations

import functools
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.dml import Insert

from infra.errors import ConfigurationError

#: Execution option marking a connection's transactions as read-only (see ``Services.reading``).
READ_ONLY = "herald_read_only"


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` so concurrent worker processes queue for the write
    lock instead of failing with ``database is locked`` on upgrade."""
    if url.startswith("sqlite"):
        if sqlite3.sqlite_version_info < (3, 35):
            # The batch store functions use UPDATE … RETURNING and INSERT … ON CONFLICT … RETURNING.
            found = sqlite3.sqlite_version
            raise ConfigurationError(f"herald needs SQLite 3.35 or newer; this Python has {found}")
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(WRITE_LOCK_WAIT_SECONDS * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the write lock up front; a read-only transaction (``READ_ONLY``) does not
            # queue behind them at all (WAL readers never block).
            if conn.get_execution_options().get(READ_ONLY, False):
                conn.exec_driver_sql("BEGIN")
            else:
                begin_immediate(conn.connection.dbapi_connection)

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


#: How long a writer waits for SQLite's write lock before ``database is locked`` (its busy timeout).
WRITE_LOCK_WAIT_SECONDS = 30.0
#: Between two tries for the write lock: growing from the first to the last, then steady.
_FIRST_POLL_SECONDS, _LAST_POLL_SECONDS = 0.0002, 0.002


def begin_immediate(dbapi_connection: Any) -> None:
    """``BEGIN IMMEDIATE`` on a raw ``sqlite3`` connection, waiting for the write lock by polling
    every 2 ms at most rather than through SQLite's busy handler.

    SQLite's handler sleeps 1, 2, 5, 10, 15, 20, 25 … 100 ms between tries, so a writer that lost a
    few times sleeps on long after the lock is free: with four stage processes writing, the lock
    sat idle while every waiter slept, and a stage's queue grew at 200 events/s with its CPU mostly
    idle (issue 15). Statements inside the transaction keep the busy timeout (WAL readers and the
    holder of the write lock barely ever meet it).
    """
    deadline = time.monotonic() + WRITE_LOCK_WAIT_SECONDS
    pause = _FIRST_POLL_SECONDS
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                    # As SQLAlchemy would have raised it had it run the statement.
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause)
            pause = min(pause * 2, _LAST_POLL_SECONDS)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(WRITE_LOCK_WAIT_SECONDS * 1000)}")


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect (built once per table).

    Its ``rowcount`` says whether the row was new (1) or already there (0) on every dialect.
    """
    return insert_ignore_for(conn.dialect.name, table)


@functools.cache
def insert_ignore_for(name: str, table: Table) -> Insert:
    """``insert_ignore`` for the dialect called ``name``, built once and shared."""
    # Without preserve_rowcount, SQLAlchemy's psycopg dialect reports -1 for an INSERT's rowcount,
    # which would read as "inserted" even when the conflict skipped it.
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    raise RuntimeError(f"unsupported database dialect {name!r}")  # pragma: no cover

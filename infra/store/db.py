"""Engine construction: SQLite (default) or PostgreSQL, tuned for many writers."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
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
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Writers take the write lock up front; a read-only transaction (``READ_ONLY``) does not
            # queue behind them at all (WAL readers never block).
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` for the connection's dialect.

    Its ``rowcount`` says whether the row was new (1) or already there (0) on every dialect.
    """
    name = conn.dialect.name
    # Without preserve_rowcount, SQLAlchemy's psycopg dialect reports -1 for an INSERT's rowcount,
    # which would read as "inserted" even when the conflict skipped it.
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    raise RuntimeError(f"unsupported database dialect {name!r}")  # pragma: no cover

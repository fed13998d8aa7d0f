"""SQLite writers (``infra.store.db.begin_immediate``, ``Services.transaction``): a writer waiting
for the write lock starts soon after it is free, and gives up as SQLite did (``database is
locked``, an ``OperationalError``) once the busy timeout is spent."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from infra.store import db
from tests.conftest import wait_for


def _engine(tmp_path: Path) -> Any:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine


def test_a_writer_waiting_for_the_lock_gets_it_once_the_holder_commits(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    holder = engine.connect()
    holder.begin()  # BEGIN IMMEDIATE: holds the write lock
    holder.execute(text("INSERT INTO t VALUES (1)"))
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        holder.commit()  # whenever the writer started waiting, it goes on once this is done
        wait_for(done.is_set, timeout=10, what="the waiting writer to commit")
    finally:
        holder.close()
        writer.join(timeout=10)
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT n FROM t")).scalars()) == [1, 2]
    engine.dispose()


def test_a_writer_gives_up_with_database_is_locked_once_the_wait_is_spent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tmp_path)
    monkeypatch.setattr(db, "WRITE_LOCK_WAIT_SECONDS", 0.1)
    holder = engine.connect()
    holder.begin()
    try:
        with pytest.raises(OperationalError, match="locked"), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (3)"))
    finally:
        holder.rollback()
        holder.close()
    with engine.begin() as conn:  # the connection that gave up is usable again
        conn.execute(text("INSERT INTO t VALUES (4)"))
        assert list(conn.execute(text("SELECT n FROM t")).scalars()) == [4]
    engine.dispose()

"""Apply Alembic migrations on start, once even when many processes start together.

Alembic is imported only when the database is not already at ``HEADS``: every stage process boots
the store, and alembic with mako and pygments is ~12 MB of a worker's RSS and ~90 ms of its start
for what is, once the first process has migrated, a no-op.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every herald process.
_PG_LOCK_KEY = 0x6865_7261
#: The newest revisions (alembic's heads). ``tests/unit/test_migrate.py`` holds it to the scripts.
HEADS = frozenset({"0014_webhook_retention"})


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to ``engine`` (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "sqlite":
        db_path = engine.url.database
        if not db_path or db_path == ":memory:":
            yield
            return
        lock_path = Path(db_path + ".migrate.lock")
        with lock_path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})


def revisions(engine: Engine) -> frozenset[str]:
    """The revisions the database is at (empty for a new database, or one that cannot be read)."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return frozenset()
            return frozenset(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:
        return frozenset()  # alembic will say what is wrong, under the lock


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (nothing to load or lock when it is there)."""
    if revisions(engine) == HEADS:
        return
    from alembic import command

    with _migration_lock(engine):
        # "heads": branches made side by side (one per feature) apply together; a merge revision joins them.
        command.upgrade(alembic_config(engine), "heads")

"""The migration short cut: a database at the heads loads no alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from infra.store import migrate


def test_heads_are_the_heads_of_the_migration_scripts() -> None:
    config = migrate.alembic_config(create_engine("sqlite://"))
    assert frozenset(ScriptDirectory.from_config(config).get_heads()) == migrate.HEADS


def test_a_new_database_is_migrated_to_the_heads_and_then_found_there(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'herald.db'}")
    assert migrate.revisions(engine) == frozenset()
    migrate.upgrade(engine)
    assert migrate.revisions(engine) == migrate.HEADS


def test_a_process_that_finds_the_schema_current_imports_no_alembic(tmp_path: Path) -> None:
    database = tmp_path / "herald.db"
    migrate.upgrade(create_engine(f"sqlite:///{database}"))
    probe = (
        "import sys; from sqlalchemy import create_engine; from infra.store import migrate; "
        f"migrate.upgrade(create_engine('sqlite:///{database}')); print('alembic' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"

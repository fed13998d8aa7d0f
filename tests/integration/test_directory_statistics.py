"""``herald contacts import`` leaves PostgreSQL with statistics on the directory, so the traffic
that follows is planned on them (without, route's contact read was a nested loop: 5 s a query)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from infra.bootstrap import Services
from producers.cli import app

TABLES = ("customers", "contacts", "customer_contacts", "contact_emails")


def _tuples(store: Services) -> dict[str, float]:
    """What the planner believes each directory table holds (-1: never analyzed)."""
    with store.reading() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relname = ANY(:names)"
            ),
            {"names": list(TABLES)},
        )
        return {name: float(tuples) for name, tuples in rows}


def test_an_import_analyzes_the_directory_on_postgresql(store: Services, tmp_path: Path) -> None:
    customers = [
        {
            "org_id": "acme",
            "customer_id": f"c{n}",
            "contacts": [
                {
                    "contact_id": f"p{n}",
                    "primary": True,
                    "mobile": f"+35840{n:07d}",
                    "emails": [{"address": f"c{n}@example.com"}],
                }
            ],
        }
        for n in range(20)
    ]
    path = tmp_path / "directory.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in customers), encoding="utf-8")

    result = CliRunner().invoke(app, ["contacts", "import", str(path)], obj=store.settings)

    assert result.exit_code == 0, result.output
    assert "20 created" in result.output
    if store.engine.dialect.name != "postgresql":
        return  # SQLite plans without ANALYZE's tables, and the import runs none
    tuples = _tuples(store)
    assert tuples == dict.fromkeys(TABLES, 20.0)

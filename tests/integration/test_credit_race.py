"""SMS credit under contention: 8 workers race for the last 10 segments and never overspend.

Runs on SQLite always, and on PostgreSQL where one is given (HERALD_TEST_POSTGRES_URL, e.g.
postgresql+psycopg://herald:herald@127.0.0.1:5432/herald with the `postgres` extra installed).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import Settings
from infra.store.notifications import NewNotification, record_event, record_notifications
from infra.store.organisations import org_settings, reserve_credit, update_org
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created

DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("HERALD_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    shutdown()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.db'}"
    else:
        url = os.environ["HERALD_TEST_POSTGRES_URL"]
    services = bootstrap(Settings(database_url=url))  # type: ignore[arg-type]
    yield services
    if request.param == "postgresql":
        with services.transaction() as conn:
            for table in ("status_changes", "org_warnings", "notifications", "events", "organisations"):
                conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
    shutdown()


def test_eight_workers_racing_for_the_last_ten_segments_never_overspend(database: Services) -> None:
    org = f"race-{uuid.uuid4().hex[:6]}"
    event = parse_event({**invoice_created("evt_race"), "org_id": org})
    people = [
        NewNotification(f"P{i}", "invoice", "sms", f"+35840100000{i}", "fi", "send", True) for i in range(8)
    ]
    with database.transaction() as conn:
        update_org(conn, org, {"buys_credit": True, "credit_balance": 10})
        record_event(conn, event, event_to_json(event), "routed")
        ids = record_notifications(conn, event, people)
    won: list[bool] = []
    barrier = threading.Barrier(8)

    def worker(nid: str) -> None:
        barrier.wait()
        for _ in range(2):  # a redelivered message reserves nothing twice
            with database.transaction() as conn:
                result = reserve_credit(conn, nid, org, 3)
        won.append(result)

    threads = [threading.Thread(target=worker, args=(nid,)) for nid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    with database.transaction() as conn:
        balance = org_settings(conn, org)["credit_balance"]
    assert sorted(won) == [False] * 5 + [True] * 3  # three reservations of 3 fit in 10
    assert balance == 1

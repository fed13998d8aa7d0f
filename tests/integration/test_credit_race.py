"""SMS credit under contention: 8 workers race for the last 10 segments and never overspend.

Runs on SQLite and on PostgreSQL (the ``store`` fixture: a fresh database of each).
"""

from __future__ import annotations

import functools
import uuid

from infra.bootstrap import Services
from infra.store.notifications import NewNotification, record_event, record_notifications
from infra.store.organisations import org_settings, reserve_credit, update_org
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created
from tests.integration.conftest import race


def test_eight_workers_racing_for_the_last_ten_segments_never_overspend(store: Services) -> None:
    org = f"race-{uuid.uuid4().hex[:6]}"
    event = parse_event({**invoice_created("evt_race"), "org_id": org})
    people = [
        NewNotification(f"P{i}", "invoice", "sms", f"+35840100000{i}", "fi", "send", True) for i in range(8)
    ]
    with store.transaction() as conn:
        update_org(conn, org, {"buys_credit": True, "credit_balance": 10})
        record_event(conn, event, event_to_json(event), "routed")
        ids = record_notifications(conn, event, people)
    won: list[bool] = []

    def worker(nid: str) -> None:
        for _ in range(2):  # a redelivered message reserves nothing twice
            with store.transaction() as conn:
                result = reserve_credit(conn, nid, org, 3)
        won.append(result)

    race([functools.partial(worker, nid) for nid in ids])
    with store.transaction() as conn:
        balance = org_settings(conn, org)["credit_balance"]
    assert sorted(won) == [False] * 5 + [True] * 3  # three reservations of 3 fit in 10
    assert balance == 1

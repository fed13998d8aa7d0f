"""``herald orgs reminders`` and ``herald scheduler`` as an operator runs them, with route running."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta

from tests.conftest import wait_for
from tests.e2e.conftest import BIN, Deployment
from tests.factories import invoice_created


def _rows(deployment: Deployment, sql: str) -> list[tuple[object, ...]]:
    if not deployment.database_exists():
        return []
    try:
        return [tuple(r) for r in deployment.query(sql)]
    except Exception:  # route has not migrated the database yet
        return []


def test_offsets_are_set_and_the_scheduler_publishes_one_catch_up_and_stops_on_sigterm(
    deployment: Deployment,
) -> None:
    refused = deployment.herald("orgs", "reminders", "set", "acme", "+1.5")
    assert refused.returncode == 2
    assert "an offset is whole days from the due date" in refused.stderr
    saved = deployment.herald("orgs", "reminders", "set", "acme", "-3", "+1", "+7=final")
    assert saved.returncode == 0, saved.stderr
    assert "no payment_reminder.final templates yet" in saved.stderr
    shown = deployment.herald("orgs", "reminders", "show", "acme")
    assert shown.stdout.splitlines() == [
        "acme  -3 days  payment_reminder",
        "acme  +1 days  payment_reminder",
        "acme  +7 days  payment_reminder.final",
    ]

    deployment.start(str(BIN / "herald"), "worker", "route", log="route.log")
    due = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()  # every offset has come
    event = invoice_created("evt_inv", id="INV-9", due_date=due, send=False)
    assert deployment.herald("publish", "-", stdin=json.dumps(event) + "\n").returncode == 0
    wait_for(lambda: _rows(deployment, "SELECT invoice_id FROM invoices"), timeout=60, what="invoice routed")

    first = deployment.herald("scheduler", "--once")
    assert first.returncode == 0, first.stderr
    assert "published 1, superseded 2" in first.stdout
    wait_for(
        lambda: (
            _rows(deployment, "SELECT event_id FROM events WHERE type = 'reminder.due'") == [("rem_INV-9_7",)]
        ),
        timeout=60,
        what="the catch-up reminder routed",
    )
    assert "published 0, superseded 0" in deployment.herald("scheduler", "--once").stdout

    running = deployment.start(str(BIN / "herald"), "scheduler", "--interval", "0.2", log="scheduler.log")
    wait_for(lambda: "scheduler started" in deployment.log("scheduler.log"), timeout=60, what="scheduler up")
    os.killpg(running.pid, signal.SIGTERM)
    assert running.wait(timeout=30) == 0
    assert "scheduler stopped" in deployment.log("scheduler.log")

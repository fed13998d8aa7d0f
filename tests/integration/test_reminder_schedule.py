"""``herald reminders show --invoice`` and ``GET /invoices/{id}/reminders``: the invoice's schedule,
local and UTC, with each reminder's state and reason; the key's organisation only."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from infra.bootstrap import Services
from infra.store.api_keys import create_key
from infra.store.history import invoice_history
from infra.store.notifications import record_event
from infra.store.organisations import update_org
from infra.store.reminders import claim, defer, mark_published, set_offsets, track_invoices
from producers.api.app import create_app
from producers.cli import app
from schemas.access import Level
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created

NOW = datetime(2027, 11, 30, 7, 0, tzinfo=UTC)


def _setup(store: Services) -> None:
    with store.transaction() as conn:
        created = parse_event(invoice_created("evt_inv", due_date="2027-12-03"))
        record_event(conn, created, event_to_json(created), "routed")
        track_invoices(conn, [created])
        update_org(
            conn,
            "acme",
            {"timezone": "Europe/Helsinki", "reminder_hour": 9, "country": "FI", "business_days": True},
        )
        set_offsets(conn, "acme", {-3: None, 1: None, 3: None, 14: "final"}, business={3})
        claim(conn, "acme", "INV-1", -3, "rem_INV-1_-3", NOW)
        mark_published(conn, "acme", "INV-1", -3, NOW)
        defer(
            conn,
            "acme",
            "INV-1",
            1,
            NOW,
            payment_id="PM0001",
            reason="payment PM0001 submitted",
            resume_after=None,
        )


EXPECTED = [
    {
        "offset": "-3",
        "template": None,
        "state": "sent",
        "local": "2027-11-30T09:00:00+02:00",
        "utc": "2027-11-30T07:00:00Z",
        "reason": None,
    },
    {
        "offset": "+1",
        "template": None,
        "state": "deferred_collection_pending",
        "local": "2027-12-07T09:00:00+02:00",
        "utc": "2027-12-07T07:00:00Z",
        "reason": "payment PM0001 submitted",
    },
    {
        "offset": "+3b",
        "template": None,
        "state": "planned",
        "local": "2027-12-09T09:00:00+02:00",
        "utc": "2027-12-09T07:00:00Z",
        "reason": None,
    },
    {
        "offset": "+14",
        "template": "final",
        "state": "planned",
        "local": "2027-12-17T09:00:00+02:00",
        "utc": "2027-12-17T07:00:00Z",
        "reason": None,
    },
]


def test_reminders_show_lists_every_reminder_with_its_local_and_utc_time_state_and_reason(
    store: Services,
) -> None:
    _setup(store)
    result = CliRunner().invoke(
        app, ["reminders", "show", "--invoice", "INV-1", "--org", "acme", "--json"], obj=store.settings
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.output.splitlines()] == EXPECTED
    table = CliRunner().invoke(
        app, ["reminders", "show", "--invoice", "INV-1", "--org", "acme"], obj=store.settings
    )
    assert table.exit_code == 0
    assert "deferred_collection_pending" in table.output


def test_a_moved_reminder_says_from_which_date_and_why(store: Services) -> None:
    _setup(store)
    with store.transaction() as conn:
        set_offsets(conn, "acme", {-3: None, 1: None, 2: None}, business=set())
    result = CliRunner().invoke(
        app, ["reminders", "show", "--invoice", "INV-1", "--org", "acme", "--json"], obj=store.settings
    )
    lines = {json.loads(line)["offset"]: json.loads(line) for line in result.output.splitlines()}
    assert lines["+2"]["reason"] == "moved from 2027-12-05 (Sunday)"
    assert lines["+2"]["utc"] == "2027-12-07T07:00:00Z"  # Monday the 6th is Independence Day


def test_another_organisations_invoice_is_unknown_to_the_cli_and_the_api(store: Services) -> None:
    _setup(store)
    result = CliRunner().invoke(
        app, ["reminders", "show", "--invoice", "INV-1", "--org", "other"], obj=store.settings
    )
    assert result.exit_code == 1
    assert "other has no invoice INV-1" in result.output
    with store.transaction() as conn:
        acme = create_key(conn, "acme", Level.VIEW)[1]
        other = create_key(conn, "other", Level.ADMIN)[1]
    client = TestClient(create_app(store.settings, store))
    mine = client.get("/invoices/INV-1/reminders", headers={"Authorization": f"Bearer {acme}"})
    assert mine.status_code == 200
    assert mine.json() == {"invoice_id": "INV-1", "reminders": EXPECTED}
    theirs = client.get("/invoices/INV-1/reminders", headers={"Authorization": f"Bearer {other}"})
    assert theirs.status_code == 404
    for hostile in ("INV-1%00", "x" * 5000, "%E2%80%AE", "..%2F..%2Fetc"):
        answer = client.get(f"/invoices/{hostile}/reminders", headers={"Authorization": f"Bearer {acme}"})
        assert answer.status_code in (400, 404, 414), (hostile, answer.status_code)


def test_the_invoices_history_says_when_a_reminder_was_moved_or_deferred_and_why(store: Services) -> None:
    _setup(store)
    with store.transaction() as conn:
        moved_at = datetime(2027, 12, 7, 7, 0, tzinfo=UTC)
        claim(
            conn,
            "acme",
            "INV-1",
            2,
            "rem_INV-1_2",
            moved_at,
            fire_at=moved_at,
            moved_from=datetime(2027, 12, 5).date(),
            moved_reason="Sunday",
        )
        mark_published(conn, "acme", "INV-1", 2, moved_at)
        timeline = invoice_history(conn, "INV-1", "acme")["timeline"]
    reminders = {e["offset_days"]: e for e in timeline if e["what"] == "reminder"}
    assert (reminders[2]["status"], reminders[2]["moved_from"], reminders[2]["reason"]) == (
        "published",
        "2027-12-05",
        "Sunday",
    )
    assert reminders[2]["fire_at"].startswith("2027-12-07T07:00:00")
    assert (reminders[1]["status"], reminders[1]["payment_id"]) == ("deferred_collection_pending", "PM0001")
    with store.reading() as conn:
        assert invoice_history(conn, "INV-1", "other")["timeline"] == []  # another organisation sees nothing
    shown = CliRunner().invoke(app, ["history", "--invoice", "INV-1", "--org", "acme"], obj=store.settings)
    assert shown.exit_code == 0, shown.output
    assert "reminder +2 published, moved from 2027-12-05 (Sunday)" in shown.output
    assert "reminder +1 deferred_collection_pending: payment PM0001 submitted" in shown.output

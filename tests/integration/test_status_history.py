"""Status reports in the timeline: a report that arrives after a final status is kept, and says
it was ignored; the notification's status only ever moves forward. Both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.bootstrap import Services
from infra.store.history import invoice_history
from infra.store.notifications import (
    StatusChange,
    apply_status,
    load_notification,
)
from schemas.notifications import Status
from tests.integration.stored import claimed_sms


def _report(store: Services, nid: str, status: Status, at: datetime, detail: str | None = None) -> bool:
    with store.transaction() as conn:
        change = StatusChange(nid, status, "twilio_callback", at, provider_id="SM1", detail=detail)
        return apply_status(conn, change)


def _statuses(store: Services) -> dict[str, dict[str, object]]:
    with store.reading() as conn:
        timeline = invoice_history(conn, "INV-1")["timeline"]
    return {e["what"]: e for e in timeline if e["what"] in {s.value for s in Status}}


def test_a_failed_or_undelivered_after_delivered_is_shown_as_ignored_and_changes_nothing(
    store: Services,
) -> None:
    nid = claimed_sms(store, "SM1")
    now = datetime.now(UTC)
    assert _report(store, nid, Status.SENT, now)
    assert _report(store, nid, Status.DELIVERED, now + timedelta(seconds=1))
    assert not _report(store, nid, Status.FAILED, now + timedelta(seconds=2), detail="30003 unreachable")
    assert not _report(store, nid, Status.UNDELIVERED, now + timedelta(seconds=3))

    with store.reading() as conn:
        row = load_notification(conn, nid)
    assert row is not None
    assert row.status == Status.DELIVERED  # forward only
    steps = _statuses(store)
    assert steps["failed"]["ignored"] is True
    assert steps["failed"]["detail"] == "ignored: already delivered; 30003 unreachable"
    assert steps["undelivered"]["ignored"] is True
    assert steps["undelivered"]["detail"] == "ignored: already delivered"
    assert steps["sent"]["ignored"] is False
    assert steps["delivered"]["ignored"] is False
    assert steps["delivered"]["detail"] is None


def test_a_late_sent_after_failed_says_it_was_ignored(store: Services) -> None:
    nid = claimed_sms(store, "SM1")
    now = datetime.now(UTC)
    assert _report(store, nid, Status.FAILED, now, detail="21610 opted out")
    assert not _report(store, nid, Status.SENT, now + timedelta(seconds=1))
    steps = _statuses(store)
    assert (steps["failed"]["ignored"], steps["failed"]["detail"]) == (False, "21610 opted out")
    assert (steps["sent"]["ignored"], steps["sent"]["detail"]) == (True, "ignored: already failed")
    with store.reading() as conn:
        row = load_notification(conn, nid)
    assert row is not None
    assert row.status == Status.FAILED

"""Collection-aware reminders on the real broker and both stores: a reminder waits while the
invoice's Direct Debit payment is on its way, and goes once the payment failed for good; a partly
paid invoice's reminder asks for what is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.dunning import record_retry
from infra.store.gocardless import upsert_payment
from infra.store.reminders import DEFERRED, reminder_rows, set_offsets
from infra.store.tables import events, invoices, notifications
from producers.publisher import Publisher
from producers.scheduler import Scheduler
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created, payment_failed, payment_received

PLUS_1 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _setup(services: Services) -> None:
    with services.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer("C1")), region="FI")
        set_offsets(conn, "acme", {1: None, 7: None})
    with Publisher(services.settings) as publisher:
        publisher.publish(invoice_created("evt_inv_1", send=False))
    wait_for(lambda: _invoices(services) == 1, timeout=60, what="the invoice routed")


def _invoices(services: Services) -> int:
    with services.reading() as conn:
        return len(conn.execute(select(invoices.c.invoice_id)).all())


def _payment(services: Services, status: str, charge_date: str = "2026-12-03") -> None:
    """The invoice's Direct Debit payment as collect and the webhooks record it."""
    payment = {
        "id": "PM0001",
        "amount": 123450,
        "currency": "EUR",
        "status": status,
        "charge_date": charge_date,
        "created_at": "2026-11-25T10:00:00Z",
        "links": {"mandate": "MD0001"},
        "metadata": {},
    }
    with services.transaction() as conn:
        upsert_payment(conn, payment, datetime.now(UTC), org_id="acme", invoice_id="INV-1", customer_id="C1")


def _reminder_sms(services: Services) -> list[dict[str, Any]]:
    with services.reading() as conn:
        query = select(notifications).where(
            notifications.c.kind == "payment_reminder", notifications.c.channel == "sms"
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def test_a_reminder_deferred_by_a_pending_direct_debit_resumes_after_the_payment_fails(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    _setup(pipeline)
    _payment(pipeline, "submitted")
    with Publisher(pipeline.settings) as publisher:
        scheduler = Scheduler(pipeline, publisher, hour=9)
        report = scheduler.tick(PLUS_1)
        assert report.published == []
        assert report.deferred == [("INV-1", 1, "PM0001")]
        with pipeline.reading() as conn:
            [row] = reminder_rows(conn, "acme", "INV-1")
        assert (row["status"], row["payment_id"], row["moved_reason"]) == (
            DEFERRED,
            "PM0001",
            "payment PM0001 submitted",
        )
        # Still on its way the next day: still deferred, the same row, nothing sent.
        assert scheduler.tick(PLUS_1 + timedelta(days=1)).deferred == [("INV-1", 1, "PM0001")]

        # It fails, and GoCardless will retry on 5 December: reminders wait until after the 5th + 3 days.
        _payment(pipeline, "failed", charge_date="2026-12-05")
        with pipeline.transaction() as conn:
            record_retry(conn, "PM0001", True)
        waiting = scheduler.tick(PLUS_1 + timedelta(days=2))
        assert waiting.deferred == [("INV-1", 1, "PM0001")]
        with pipeline.reading() as conn:
            [row] = reminder_rows(conn, "acme", "INV-1")
        assert str(row["resume_after"]) == "2026-12-08"

        # It fails for good (no retry): the webhook publishes payment.failed (the customer is told)
        # and the schedule resumes at once, with the reminder deferred.
        with pipeline.transaction() as conn:
            record_retry(conn, "PM0001", False)
        publisher.publish(payment_failed("gocardless-EV0001"))
        resumed = scheduler.tick(PLUS_1 + timedelta(days=2, minutes=1))
        assert resumed.published == ["rem_INV-1_1"]
        assert resumed.deferred == []
        assert scheduler.tick(PLUS_1 + timedelta(days=3)).published == []
    with pipeline.reading() as conn:
        assert [r["status"] for r in reminder_rows(conn, "acme", "INV-1")] == ["published"]
    wait_for(
        lambda: [r["status"] for r in _reminder_sms(pipeline)] == [Status.SENT],
        timeout=60,
        what="the resumed reminder sent",
    )
    wait_for(
        lambda: [r["status"] for r in _sms_of(pipeline, "payment_failed")] == [Status.SENT],
        timeout=60,
        what="the payment-failed SMS sent",
    )
    assert len(twilio_sandbox.messages()) == 2  # payment failed, then the reminder; each once


def _sms_of(services: Services, kind: str) -> list[dict[str, Any]]:
    with services.reading() as conn:
        query = select(notifications).where(notifications.c.kind == kind, notifications.c.channel == "sms")
        return [dict(r) for r in conn.execute(query).mappings()]


def test_a_deferred_reminder_overtaken_by_the_next_offset_is_superseded(pipeline: Services) -> None:
    _setup(pipeline)
    _payment(pipeline, "pending_submission")
    with Publisher(pipeline.settings) as publisher:
        scheduler = Scheduler(pipeline, publisher, hour=9)
        assert scheduler.tick(PLUS_1).deferred == [("INV-1", 1, "PM0001")]
        _payment(pipeline, "failed")
        report = scheduler.tick(PLUS_1 + timedelta(days=6))  # +7 has come
        assert report.published == ["rem_INV-1_7"]
    with pipeline.reading() as conn:
        assert [r["status"] for r in reminder_rows(conn, "acme", "INV-1")] == ["superseded", "published"]


def test_a_partly_paid_invoices_reminder_asks_for_what_is_left(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    _setup(pipeline)
    part = payment_received("evt_part")
    part["data"]["payment"]["amount"] = "234.50"
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(part)
        wait_for(lambda: _routed(pipeline), timeout=60, what="the partial payment routed")
        assert Scheduler(pipeline, publisher, hour=9).tick(PLUS_1).published == ["rem_INV-1_1"]
    wait_for(lambda: [r["status"] for r in _reminder_sms(pipeline)] == [Status.SENT], timeout=60, what="sent")
    [reminder] = _reminder_sms(pipeline)
    sent = [m["body"] for m in twilio_sandbox.messages() if m["body"] == reminder["body"]]
    assert len(sent) == 1
    digits = "".join(ch for ch in reminder["body"] if ch.isdigit())
    assert "100000" in digits  # 1 000,00 € (fi) — what is left of 1 234,50 after 234,50
    assert "123450" not in digits


def _routed(services: Services) -> bool:
    with services.reading() as conn:
        return (
            conn.execute(select(events.c.event_id).where(events.c.event_id == "evt_part")).first() is not None
        )

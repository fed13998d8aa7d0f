"""The reminder scheduler on the real broker and store, with the clock in the test's hand.

Invoices reach the scheduler the way they do in production: published as ``invoice.created``
and routed. What is asserted is what route recorded (the events table) and what the Twilio
sandbox received.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from infra.bootstrap import Services
from infra.errors import BrokerUnavailable
from infra.store.directory import upsert_customer
from infra.store.reminders import reminder_rows, set_offsets
from infra.store.tables import events, invoices, notifications
from infra.store.templates import save_override
from producers.publisher import Publisher
from producers.scheduler import Scheduler
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created, payment_received

#: Every test invoice is due on 1 December; reminders fire at 09:00 UTC.
DUE = "2026-12-01"
MINUS_3 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
PLUS_1 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PLUS_7 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _setup(services: Services, count: int = 1, offsets: dict[int, str | None] | None = None) -> list[str]:
    """``count`` customers with one primary mobile each, their invoices routed; offsets -3 +1 +7."""
    ids = [f"INV-{i}" for i in range(count)]
    with services.transaction() as conn:
        for i in range(count):
            contacts = [{"contact_id": f"P{i}", "primary": True, "mobile": f"+35840{i:07d}", "locale": "fi"}]
            record = customer(f"C{i}", contacts=contacts)
            upsert_customer(conn, CustomerRecord.model_validate(record), region="FI")
        set_offsets(conn, "acme", offsets if offsets is not None else {-3: None, 1: None, 7: None})
    created = [
        invoice_created(f"evt_inv_{i}", id=ids[i], customer_id=f"C{i}", due_date=DUE, send=False)
        for i in range(count)
    ]
    with Publisher(services.settings) as publisher:
        publisher.publish_many(created)
    wait_for(lambda: _count(services, invoices) == count, timeout=60, what=f"{count} invoices routed")
    return ids


def _count(services: Services, table: Any, *where: Any) -> int:
    with services.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def _reminders_routed(services: Services) -> list[str]:
    """The reminder.due event ids route recorded, in id order."""
    with services.reading() as conn:
        rows = conn.execute(select(events.c.event_id).where(events.c.type == "reminder.due"))
        return sorted(r.event_id for r in rows)


def _reminder_sms(services: Services) -> list[dict[str, Any]]:
    with services.reading() as conn:
        query = select(notifications).where(
            notifications.c.kind == "payment_reminder", notifications.c.channel == "sms"
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def _sms_sent(services: Services, count: int) -> bool:
    rows = _reminder_sms(services)
    return len(rows) == count and all(r["status"] == Status.SENT for r in rows)


def _scheduler(services: Services, publisher: Any) -> Scheduler:
    return Scheduler(services, publisher, hour=9)


def test_each_offset_fires_once_at_its_time_and_never_again(pipeline: Services, twilio_sandbox: Any) -> None:
    [invoice] = _setup(pipeline)
    with Publisher(pipeline.settings) as publisher:
        scheduler = _scheduler(pipeline, publisher)
        assert scheduler.tick(MINUS_3 - timedelta(minutes=1)).published == []
        assert scheduler.tick(MINUS_3).published == [f"rem_{invoice}_-3"]
        assert scheduler.tick(MINUS_3 + timedelta(hours=5)).published == []
        assert scheduler.tick(PLUS_1).published == [f"rem_{invoice}_1"]
        assert scheduler.tick(PLUS_1 + timedelta(days=1)).published == []
        assert scheduler.tick(PLUS_7).published == [f"rem_{invoice}_7"]
        assert scheduler.tick(PLUS_7 + timedelta(days=30)).published == []

    expected = sorted(f"rem_{invoice}_{o}" for o in (-3, 1, 7))
    wait_for(lambda: _reminders_routed(pipeline) == expected, timeout=60, what="three reminders routed")
    wait_for(lambda: _sms_sent(pipeline, 3), timeout=60, what="three reminder SMS sent")
    assert len(twilio_sandbox.messages()) == 3
    with pipeline.reading() as conn:
        assert [r["status"] for r in reminder_rows(conn, "acme", invoice)] == ["published"] * 3


def test_two_schedulers_ticking_at_once_publish_each_reminder_once(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    ids = _setup(pipeline, count=12)
    barrier = threading.Barrier(2)
    reports: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with Publisher(pipeline.settings) as publisher:
                scheduler = _scheduler(pipeline, publisher)
                barrier.wait(timeout=30)
                reports.append(scheduler.tick(MINUS_3).published)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    published = reports[0] + reports[1]
    assert sorted(published) == sorted(f"rem_{i}_-3" for i in ids)  # each once, between them

    wait_for(lambda: len(_reminders_routed(pipeline)) == 12, timeout=60, what="12 reminders routed")
    wait_for(lambda: _sms_sent(pipeline, 12), timeout=60, what="12 reminder SMS sent")
    assert len(twilio_sandbox.messages()) == 12


def test_a_paid_invoice_gets_no_more_reminders(pipeline: Services, twilio_sandbox: Any) -> None:
    [invoice] = _setup(pipeline)
    with Publisher(pipeline.settings) as publisher:
        scheduler = _scheduler(pipeline, publisher)
        assert scheduler.tick(MINUS_3).published == [f"rem_{invoice}_-3"]
        payment = payment_received("evt_pay_1")
        payment["data"]["payment"].update(invoice_id=invoice, customer_id="C0")
        publisher.publish(payment)
        wait_for(
            lambda: _count(pipeline, invoices, invoices.c.paid_at.is_not(None)) == 1,
            timeout=60,
            what="the payment routed and the invoice marked paid",
        )
        assert scheduler.tick(PLUS_1).published == []
        assert scheduler.tick(PLUS_7).published == []

    wait_for(lambda: _reminders_routed(pipeline) == [f"rem_{invoice}_-3"], timeout=60, what="one reminder")
    # The reminder and the payment were published a moment apart; route may take them together or
    # on two threads at once. Either order is right: sent when the reminder came first, skipped
    # as already paid when the payment did (see docs/reminders.md): never a second reminder.
    wait_for(
        lambda: _sms_sent(pipeline, 1) or _reminder_skipped_as_paid(pipeline),
        timeout=60,
        what="the one reminder SMS sent, or skipped as already paid",
    )


def _reminder_skipped_as_paid(services: Services) -> bool:
    rows = _reminder_sms(services)
    return len(rows) == 1 and rows[0]["status"] == Status.SKIPPED and rows[0]["reason"] == "already_paid"


def test_the_scheduler_asks_the_payments_itself_when_routes_paid_mark_is_missing(
    pipeline: Services,
) -> None:
    [invoice] = _setup(pipeline)
    payment = payment_received("evt_pay_1")
    payment["data"]["payment"].update(invoice_id=invoice, customer_id="C0")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(payment)
        wait_for(lambda: _count(pipeline, invoices, invoices.c.paid_at.is_not(None)) == 1, timeout=60)
        # As if the payment had been routed concurrently with the invoice and the mark lost.
        with pipeline.transaction() as conn:
            conn.execute(update(invoices).values(paid_at=None))
        assert _scheduler(pipeline, publisher).tick(PLUS_7).published == []
    assert _count(pipeline, invoices, invoices.c.paid_at.is_not(None)) == 1
    assert _reminders_routed(pipeline) == []


def test_downtime_gives_one_catch_up_and_a_restart_sends_nothing_again(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    [invoice] = _setup(pipeline, offsets={-3: None, 1: None, 7: "final"})
    with pipeline.transaction() as conn:
        save_override(
            conn, "acme", ("payment_reminder.final", "sms", "fi", "body"), "LAST {{ invoice.number }}"
        )
    late = PLUS_7 + timedelta(days=10)
    with Publisher(pipeline.settings) as publisher:
        report = _scheduler(pipeline, publisher).tick(late)
    assert report.published == [f"rem_{invoice}_7"]
    assert report.superseded == 2
    with Publisher(pipeline.settings) as publisher:  # a restart: a new process, a new scheduler
        again = _scheduler(pipeline, publisher)
        assert again.tick(late).published == []
        assert again.tick(late + timedelta(days=60)).published == []

    wait_for(lambda: _sms_sent(pipeline, 1), timeout=60, what="one catch-up SMS sent")
    assert _reminders_routed(pipeline) == [f"rem_{invoice}_7"]
    [sms] = twilio_sandbox.messages()
    assert sms["body"] == "LAST 1001"  # offset +7's own template
    with pipeline.reading() as conn:
        states = {r["offset_days"]: r["status"] for r in reminder_rows(conn, "acme", invoice)}
    assert states == {-3: "superseded", 1: "superseded", 7: "published"}


class _CrashingPublisher:
    """Dies around the publish: before it reached RabbitMQ, or after the confirm."""

    def __init__(self, real: Publisher, *, after_confirm: bool) -> None:
        self.real = real
        self.after_confirm = after_confirm

    def publish(self, event: dict[str, Any]) -> None:
        if self.after_confirm:
            self.real.publish(event)
        raise BrokerUnavailable("simulated crash")


@pytest.mark.parametrize("after_confirm", [False, True], ids=["before-publish", "after-confirm"])
def test_a_crash_between_claim_and_confirm_is_republished_once_with_the_same_event_id(
    pipeline: Services, twilio_sandbox: Any, after_confirm: bool
) -> None:
    [invoice] = _setup(pipeline)
    with Publisher(pipeline.settings) as publisher:
        crashing = _scheduler(pipeline, _CrashingPublisher(publisher, after_confirm=after_confirm))
        with pytest.raises(BrokerUnavailable):
            crashing.tick(PLUS_1)
        with pipeline.reading() as conn:
            assert [r["status"] for r in reminder_rows(conn, "acme", invoice)] == ["superseded", "claimed"]
        restarted = _scheduler(pipeline, publisher)
        assert restarted.tick(PLUS_1 + timedelta(seconds=30)).republished == []  # may still be in flight
        report = restarted.tick(PLUS_1 + timedelta(minutes=5))
        assert report.republished == [f"rem_{invoice}_1"]
        assert restarted.tick(PLUS_1 + timedelta(minutes=10)).republished == []

    wait_for(lambda: _sms_sent(pipeline, 1), timeout=60, what="the reminder SMS sent")
    assert _reminders_routed(pipeline) == [f"rem_{invoice}_1"]
    with pipeline.reading() as conn:
        assert [r["status"] for r in reminder_rows(conn, "acme", invoice)] == ["superseded", "published"]
    assert len(twilio_sandbox.messages()) == 1

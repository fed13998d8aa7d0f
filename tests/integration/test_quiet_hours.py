"""Quiet hours and local time on the real broker and both stores, with the clock in the test's hand.

Route decides by ``Services.clock`` and the scheduler by the ``now`` of its tick: the test moves one
simulated clock for both, never sleeping. What is asserted is what the store recorded and what the
Twilio sandbox received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.directory import upsert_customer
from infra.store.held import unreleased
from infra.store.history import invoice_history
from infra.store.organisations import update_org
from infra.store.reminders import set_offsets
from infra.store.tables import events, held_notifications, invoices, notifications, status_outbox
from producers.operations.reminder_schedule import reminder_schedule
from producers.publisher import Publisher
from producers.scheduler import Scheduler
from schemas.directory import CustomerRecord
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import customer, invoice_created, payment_received


class SimClock:
    """The simulated clock route and the scheduler read."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _org(services: Services, org_id: str, **settings: Any) -> None:
    with services.transaction() as conn:
        update_org(conn, org_id, settings)


def _customer(services: Services, org_id: str, customer_id: str, mobile: str, region: str) -> None:
    record = customer(
        customer_id, contacts=[{"contact_id": f"P-{customer_id}", "primary": True, "mobile": mobile}]
    )
    record["org_id"] = org_id
    with services.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(record), region=region)


def _sms(services: Services, *where: Any) -> list[dict[str, Any]]:
    with services.reading() as conn:
        query = select(notifications).where(notifications.c.channel == "sms", *where)
        return [dict(r) for r in conn.execute(query.order_by(notifications.c.created_at)).mappings()]


def _held_count(services: Services) -> int:
    with services.reading() as conn:
        return len(conn.execute(select(held_notifications.c.id)).all())


def test_a_held_sms_is_released_at_the_window_opening_after_a_restart_exactly_once(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    clock = SimClock(datetime(2026, 12, 1, 20, 30, tzinfo=UTC))  # 22:30 in Helsinki
    pipeline.clock = clock
    _org(pipeline, "acme", timezone="Europe/Helsinki", send_windows={"sms": "08:00-21:00"})
    _customer(pipeline, "acme", "C1", "+358401234567", "FI")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(invoice_created("evt_inv_1", id="INV-1", customer_id="C1"))
    wait_for(lambda: _held_count(pipeline) == 1, timeout=60, what="the invoice SMS held")
    [held] = _sms(pipeline)
    assert held["status"] == Status.PENDING
    with pipeline.reading() as conn:
        timeline = invoice_history(conn, "INV-1", "acme")
    assert "held until 2026-12-02T06:00:00+00:00" in str(timeline)
    assert twilio_sandbox.messages() == []
    # Told upstream in the same transaction: one notification.held with its release time.
    with pipeline.reading() as conn:
        told = [
            r.payload["data"] for r in conn.execute(select(status_outbox)) if r.type == "notification.held"
        ]
    assert [(d["notification_id"], d["reason"], d["until"]) for d in told] == [
        (held["id"], "quiet_hours", "2026-12-02T06:00:00Z")
    ]

    # The scheduler restarts (a new process: a new Scheduler and publisher) before the window opens.
    with Publisher(pipeline.settings) as publisher:
        assert (
            Scheduler(pipeline, publisher).tick(datetime(2026, 12, 2, 5, 59, tzinfo=UTC)).released.released
            == []
        )
    with Publisher(pipeline.settings) as publisher:
        restarted = Scheduler(pipeline, publisher)
        assert restarted.tick(datetime(2026, 12, 2, 6, 0, tzinfo=UTC)).released.released == [held["id"]]
        assert restarted.tick(datetime(2026, 12, 2, 6, 1, tzinfo=UTC)).released.released == []
    with Publisher(pipeline.settings) as publisher:
        assert (
            Scheduler(pipeline, publisher).tick(datetime(2026, 12, 3, 6, 0, tzinfo=UTC)).released.released
            == []
        )
        # The event redelivered after the release: nothing is held or sent again.
        publisher.publish(invoice_created("evt_inv_1", id="INV-1", customer_id="C1"))
    wait_for(lambda: _sms(pipeline)[0]["status"] == Status.SENT, timeout=60, what="the released SMS sent")
    assert len(twilio_sandbox.messages()) == 1
    with pipeline.reading() as conn:
        assert unreleased(conn, [held["id"]]) == set()


def test_a_held_reminder_is_settled_already_paid_when_the_payment_lands_in_between(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    # Reminders at 22:00 Helsinki time: outside the SMS window, so held until 08:00. The payment's
    # thank-you is exempt from quiet hours: it goes at once.
    fire_at = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)
    clock = SimClock(fire_at)
    pipeline.clock = clock
    windows = {"sms": "08:00-21:00", "payment_thank_you:sms": "any"}
    _org(pipeline, "acme", timezone="Europe/Helsinki", reminder_hour=22, send_windows=windows)
    _customer(pipeline, "acme", "C1", "+358401234567", "FI")
    with pipeline.transaction() as conn:
        set_offsets(conn, "acme", {1: None})
    with Publisher(pipeline.settings) as publisher:
        publisher.publish(
            invoice_created("evt_inv_1", id="INV-1", customer_id="C1", due_date="2026-12-01", send=False)
        )
        wait_for(lambda: _count(pipeline, invoices) == 1, timeout=60, what="the invoice routed")
        scheduler = Scheduler(pipeline, publisher)
        assert scheduler.tick(fire_at - timedelta(minutes=1)).published == []
        assert scheduler.tick(fire_at).published == ["rem_INV-1_1"]
        wait_for(lambda: _held_count(pipeline) == 1, timeout=60, what="the reminder SMS held")
        [shown] = reminder_schedule(pipeline, "acme", "INV-1") or []
        assert (shown["state"], shown["reason"]) == ("held", "quiet hours: goes at 2026-12-03T06:00:00Z")
        clock.now = fire_at + timedelta(hours=2)
        publisher.publish(payment_received("evt_pay_1"))
        wait_for(lambda: _routed(pipeline, "evt_pay_1"), timeout=60, what="the payment routed")
        report = scheduler.tick(datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    [reminder] = _sms(pipeline, notifications.c.kind == "payment_reminder")
    assert report.released.released == []
    assert report.released.settled == {reminder["id"]: "already_paid"}
    assert (reminder["status"], reminder["reason"]) == (Status.SKIPPED, "already_paid")
    wait_for(
        lambda: (
            [r["status"] for r in _sms(pipeline, notifications.c.kind == "payment_thank_you")]
            == [Status.SENT]
        ),
        timeout=60,
        what="the thank-you SMS sent at once",
    )
    assert len(twilio_sandbox.messages()) == 1  # the thank-you; never the reminder


def _count(services: Services, table: Any) -> int:
    with services.reading() as conn:
        return len(conn.execute(select(table)).all())


def _routed(services: Services, event_id: str) -> bool:
    with services.reading() as conn:
        return (
            conn.execute(select(events.c.event_id).where(events.c.event_id == event_id)).first() is not None
        )


# --- A simulated week: three organisations in three zones -------------------------------------------

ORGS = {
    # org: (zone, contact's mobile, region, reminder hour)
    "fi_org": ("Europe/Helsinki", "+358401234567", "FI", 9),
    "ny_org": ("America/New_York", "+12125551234", "US", 20),  # 20:00 local: inside the window
    "jp_org": ("Asia/Tokyo", "+819012345678", "JP", 22),  # 22:00 local: held until 08:00
}


def test_a_simulated_week_sends_every_reminder_sms_inside_its_recipients_local_window(
    pipeline: Services, twilio_sandbox: Any
) -> None:
    start = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # eight days: New York's +3 is 6 December UTC
    clock = SimClock(start)
    pipeline.clock = clock
    for org_id, (zone_name, mobile, region, hour) in ORGS.items():
        _org(pipeline, org_id, timezone=zone_name, reminder_hour=hour, send_windows={"sms": "08:00-21:00"})
        _customer(pipeline, org_id, "C1", mobile, region)
        with pipeline.transaction() as conn:
            set_offsets(conn, org_id, {-1: None, 1: None, 3: None})
    with Publisher(pipeline.settings) as publisher:
        for org_id in ORGS:
            event = invoice_created(
                f"evt_{org_id}", id="INV-1", customer_id="C1", due_date="2026-12-02", send=False
            )
            event["org_id"] = org_id
            publisher.publish(event)
        wait_for(lambda: _count(pipeline, invoices) == 3, timeout=60, what="three invoices routed")

        # Every 30 simulated minutes for a week: tick, let the pipeline settle, and stamp each SMS
        # the sandbox received with the simulated time it went.
        sent_at: dict[str, datetime] = {}
        published = 0
        scheduler = Scheduler(pipeline, publisher)
        while clock.now <= start + timedelta(days=8):
            report = scheduler.tick(clock.now)
            published += len(report.published)
            if report.published or report.released.released:
                _settle(pipeline, published)
            for message in twilio_sandbox.messages():
                sent_at.setdefault(message["sid"], clock.now)
            clock.now += timedelta(minutes=30)

    messages = twilio_sandbox.messages()
    assert len(messages) == 9  # three reminders for each of three organisations, each once
    by_number: dict[str, list[datetime]] = {}
    for message in messages:
        by_number.setdefault(message["to"], []).append(sent_at[message["sid"]])
    for zone_name, mobile, _, _ in ORGS.values():
        local = [t.astimezone(ZoneInfo(zone_name)) for t in sorted(by_number[mobile])]
        assert len(local) == 3
        for when in local:
            assert 8 <= when.hour < 21, f"{mobile} got an SMS at {when.isoformat()}"
        # Local dates: due 2 December, offsets -1, +1, +3 (Tokyo's 22:00 ones go at 08:00 next day).
        days = [when.date().day for when in local]
        assert days == ([2, 4, 6] if zone_name == "Asia/Tokyo" else [1, 3, 5])
    # The Tokyo organisation's reminders were held; the others' went at once.
    assert _held_count(pipeline) == 3


def _settle(services: Services, published: int) -> None:
    """Wait until the ``published`` reminders are routed and no notification that may go is unsent."""

    def routed() -> bool:
        with services.reading() as conn:
            rows = conn.execute(select(events.c.event_id).where(events.c.type == "reminder.due")).all()
            return len(rows) == published

    wait_for(routed, timeout=60, what="reminders routed")

    def quiet() -> bool:
        with services.reading() as conn:
            waiting = conn.execute(
                select(notifications.c.id).where(notifications.c.status.in_([Status.PENDING, Status.SENDING]))
            ).scalars()
            ids = list(waiting)
            return not ids or set(ids) == unreleased(conn, ids)

    wait_for(quiet, timeout=60, what="every notification that may go sent")

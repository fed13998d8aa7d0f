"""The status sweep on each store, and end to end: an SMS whose status callbacks fell while nobody
was listening is settled by asking Twilio (the sandbox) and reporting to history."""

from __future__ import annotations

import socket
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from infra.bootstrap import Services
from infra.errors import TransientProviderError
from infra.store.directory import upsert_customer
from infra.store.notifications import sweep_candidates
from infra.store.tables import events, notifications, status_changes
from producers.publisher import Publisher
from producers.status_sweep import StatusSweep
from schemas.directory import CustomerRecord
from schemas.messages import DeliveryStatusReported
from schemas.notifications import Status
from schemas.rows import NotificationRow
from tests.conftest import wait_for
from tests.factories import customer, invoice_created, notification_row
from tests.fakes import FakeSms
from workers.rules.sweep import due_for_sweep

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _id(name: str) -> str:
    return "ntf_" + name.encode().hex()


def _add(services: Services, name: str, **over: Any) -> None:
    """Notification ``_id(name)`` (and its event) as the pipeline leaves it, sent as ``SM{name}``;
    ``over`` sets any column."""
    sent: dict[str, Any] = {
        "id": _id(name),
        "event_id": f"evt_{name}",
        "status": Status.SENT,
        "provider_id": f"SM{name}",
        "attempts": 1,
        "created_at": NOW - timedelta(hours=1),
        "updated_at": NOW - timedelta(minutes=20),
    }
    row = notification_row(**{**sent, **over})
    with services.transaction() as conn:
        conn.execute(
            insert(events).values(
                org_id="acme",
                event_id=row.event_id,
                type="invoice.created",
                invoice_id="INV-1",
                customer_id="C1",
                occurred_at=NOW,
                received_at=NOW,
                payload={},
            )
        )
        conn.execute(insert(notifications).values(**asdict(row)))


class Recorder:
    """Stands in for the broker: the reports the sweep would hand to history."""

    def __init__(self) -> None:
        self.reports: list[DeliveryStatusReported] = []

    def __call__(self, message: DeliveryStatusReported) -> None:
        self.reports.append(message)


def _sweep(store: Services, fake: FakeSms, **kwargs: Any) -> tuple[StatusSweep, Recorder]:
    store._sms = fake
    recorder = Recorder()
    options: dict[str, Any] = {"after": 600, "every": 1800, "batch": 200, "max_age_hours": 72, **kwargs}
    return StatusSweep(store, emit=recorder, clock=lambda: NOW, **options), recorder


def test_the_query_selects_exactly_what_the_rule_says(store: Services) -> None:
    cases = {
        "due": {},
        "young": {"updated_at": NOW - timedelta(minutes=5)},
        "delivered": {"status": Status.DELIVERED},
        "sending": {"status": Status.SENDING},
        "no_id": {"provider_id": None},
        "email": {"channel": "email", "recipient": "a@example.com"},
        "asked_lately": {"swept_at": NOW - timedelta(minutes=10)},
        "asked_long_ago": {"swept_at": NOW - timedelta(hours=1)},
        "ancient": {"updated_at": NOW - timedelta(days=4)},
    }
    for nid, over in cases.items():
        _add(store, nid, **over)
    sweep, _ = _sweep(store, FakeSms())
    window = sweep.window(NOW)
    with store.reading() as conn:
        picked = {r.id for r in sweep_candidates(conn, window, 100)}
        rows = [NotificationRow(**r) for r in conn.execute(select(notifications)).mappings()]
    assert picked == {r.id for r in rows if due_for_sweep(r, window)}
    assert picked == {_id("due"), _id("asked_long_ago")}


def test_a_batch_is_bounded_oldest_first_and_each_notification_asked_at_most_every_interval(
    store: Services,
) -> None:
    for i in range(5):
        _add(store, f"n{i}", updated_at=NOW - timedelta(minutes=60 - i))  # n0 the oldest
    fake = FakeSms(statuses={f"SMn{i}": ("sent", None) for i in range(5)})
    sweep, recorder = _sweep(store, fake, batch=2)

    first = sweep.run_batch(NOW)
    assert (first.checked, first.unchanged) == (2, 2)
    with store.reading() as conn:
        swept = dict(conn.execute(select(notifications.c.id, notifications.c.swept_at)).all())
    assert {nid for nid, at in swept.items() if at is not None} == {_id("n0"), _id("n1")}

    assert sweep.run_batch(NOW).checked == 2  # n2, n3: the ones asked are not asked again
    assert sweep.run_batch(NOW).checked == 1  # n4
    assert sweep.run_batch(NOW + timedelta(minutes=29)).checked == 0
    assert sweep.run_batch(NOW + timedelta(minutes=31)).checked == 2  # n0, n1 again, first
    assert recorder.reports == []  # Twilio has not moved on: nothing to report


def test_what_twilio_moved_on_is_reported_with_its_code_and_the_rest_left(store: Services) -> None:
    for nid in ("ok", "lost", "waiting", "gone"):
        _add(store, nid)
    fake = FakeSms(
        statuses={
            "SMok": ("delivered", None),
            "SMlost": ("undelivered", 30003),
            "SMwaiting": ("sent", None),
        }
    )  # SMgone: Twilio answers 404
    sweep, recorder = _sweep(store, fake)
    report = sweep.run_all(NOW)
    assert (report.checked, report.unchanged, report.errors) == (4, 1, 1)
    assert report.reported == {"delivered": 1, "undelivered": 1}
    got = {(r.notification_id, r.status, r.error_code, r.source, r.provider_id) for r in recorder.reports}
    assert got == {
        (_id("ok"), Status.DELIVERED, None, "sweep", "SMok"),
        (_id("lost"), Status.UNDELIVERED, 30003, "sweep", "SMlost"),
    }
    assert sweep.run_all(NOW).checked == 0  # all asked: none again within the interval


def test_a_provider_outage_ends_the_batch_and_the_rest_wait(store: Services) -> None:
    for i in range(3):
        _add(store, f"n{i}", updated_at=NOW - timedelta(minutes=60 - i))

    class Down(FakeSms):
        def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
            raise TransientProviderError("twilio answered 503", status=503)

    sweep, _ = _sweep(store, Down())
    report = sweep.run_all(NOW)
    assert (report.checked, report.errors) == (1, 1)
    with store.reading() as conn:
        unasked = conn.execute(select(notifications.c.id).where(notifications.c.swept_at.is_(None))).all()
    assert {r.id for r in unasked} == {_id("n1"), _id("n2")}


# --- end to end: the real broker, history and the Twilio sandbox ---------------------------------


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nobody listens there


@pytest.fixture
def nobody_listening() -> str:
    """Status callbacks go to a public URL where nothing answers (the api down)."""
    return _refused_url()


@pytest.fixture
def pipeline_fields(nobody_listening: str) -> dict[str, Any]:
    """The pipeline's SMS name that URL for their status callbacks."""
    return {"public_url": nobody_listening}


def _sms(services: Services) -> dict[str, dict[str, Any]]:
    with services.reading() as conn:
        rows = conn.execute(select(notifications).where(notifications.c.channel == "sms")).mappings()
        return {str(r["recipient"]): dict(r) for r in rows}


def test_an_sms_whose_callbacks_were_lost_is_settled_by_the_sweep(
    nobody_listening: str, pipeline: Services, twilio_sandbox: Any
) -> None:
    undelivered = "+358401234568"
    twilio_sandbox.config.outcomes[undelivered] = ("undelivered", 30003)
    with pipeline.transaction() as conn:
        upsert_customer(conn, CustomerRecord.model_validate(customer("C1")), region="FI")
        contacts = [{"contact_id": "P2", "primary": True, "name": "Eino", "mobile": undelivered}]
        upsert_customer(conn, CustomerRecord.model_validate(customer("C2", contacts=contacts)), region="FI")
    with Publisher(pipeline.settings) as publisher:
        publisher.publish_many(
            [invoice_created("evt_1"), invoice_created("evt_2", id="INV-2", customer_id="C2")]
        )
    wait_for(
        lambda: [r["status"] for r in _sms(pipeline).values()] == ["sent", "sent"],
        timeout=30,
        what="both SMS sent",
    )

    def twilio_moved_on() -> bool:
        statuses = {m["to"]: m["status"] for m in twilio_sandbox.messages()}
        return statuses == {"+358401234567": "delivered", undelivered: "undelivered"}

    # Twilio moved both on; every callback fell where nobody listened, so herald still says sent.
    wait_for(twilio_moved_on, timeout=30, what="the sandbox to deliver one and fail the other")
    assert {r["status"] for r in _sms(pipeline).values()} == {"sent"}

    report = StatusSweep(pipeline, after=0).run_all()
    assert report.reported == {"delivered": 1, "undelivered": 1}
    wait_for(
        lambda: (
            {k: (r["status"], r["error_code"]) for k, r in _sms(pipeline).items()}
            == {"+358401234567": ("delivered", None), undelivered: ("undelivered", 30003)}
        ),
        timeout=30,
        what="history to record the sweep's reports",
    )
    with pipeline.reading() as conn:
        sources = conn.execute(
            select(status_changes.c.status, status_changes.c.source).where(status_changes.c.source == "sweep")
        ).all()
    assert sorted(sources) == [("delivered", "sweep"), ("undelivered", "sweep")]

    # Asked once: a second sweep within the interval asks Twilio nothing.
    with pipeline.transaction() as conn:
        conn.execute(update(notifications).values(status=Status.SENT))  # even were they still sent
    assert StatusSweep(pipeline, after=0).run_all().checked == 0

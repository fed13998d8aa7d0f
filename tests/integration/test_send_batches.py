"""The sms and email stages' batches (issue 15) on the real broker and store, sending to the
Twilio and SMTP sandboxes: each notification of a batch gets its own outcome, the good ones are
sent exactly once, the transient one is retried alone and sent once, and claims left by a batch
cut short are reconciled, never resent blindly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq
import pytest
from sqlalchemy import select, update

from infra import topology
from infra.bootstrap import Services
from infra.store.notifications import claim_for_sending_many, store_rendered, store_rendered_email
from infra.store.tables import delivery_attempts, notifications
from schemas.messages import (
    DeliveryStatusesReported,
    DeliveryStatusReported,
    EmailsRendered,
    NotificationsRendered,
)
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.integration.conftest import queue_depths
from tests.integration.stored import routed_notification
from workers import history
from workers.registry import HANDLERS

GOOD = ("+358401230001", "+358401230002", "+358401230003")
REFUSED = "+15005550001"  # the sandbox refuses Twilio's magic number with 21211
BUSY = "+358401230009"
UNKNOWN = "ntf_" + "dead" * 8
TEXT = "Lasku 1001: 1 234,50 €"


@pytest.fixture
def pipeline_fields() -> dict[str, Any]:
    # One message on the wire at a time, so the sandbox's planned fault meets the batch's first
    # send; a Retry-After over the in-call wait goes back to the queue.
    return {"sms_send_concurrency": 1, "send_call_max_wait_seconds": 0.5, "smtp_send_concurrency": 1}


@pytest.fixture
def statuses(pipeline: Services) -> Services:
    """The pipeline, with history taking batches of reports: its own actor once the history stage
    has one (``workers.registry``); until then each report of a batch applied as a single one."""
    if DeliveryStatusesReported not in HANDLERS:
        broker = pipeline.emitter.broker

        def record_statuses(body: Any) -> None:
            for report in body["reports"]:
                history.record_status(pipeline, DeliveryStatusReported.model_validate(report).body())

        dramatiq.actor(
            broker=broker,
            actor_name=DeliveryStatusesReported.actor,
            queue_name=topology.queue_name(pipeline.settings.queue_prefix, "history"),
        )(record_statuses)
    return pipeline


def _sms(services: Services, recipient: str, body: str = TEXT) -> str:
    nid = routed_notification(services, "sms", recipient, event_id=f"evt_{recipient[1:]}")
    with services.transaction() as conn:
        store_rendered(conn, nid, body)
    return nid


def _row(services: Services, nid: str) -> dict[str, Any]:
    with services.reading() as conn:
        return dict(conn.execute(select(notifications).where(notifications.c.id == nid)).mappings().one())


def _attempts(services: Services, nid: str) -> list[str]:
    with services.reading() as conn:
        rows = conn.execute(
            select(delivery_attempts.c.outcome)
            .where(delivery_attempts.c.notification_id == nid)
            .order_by(delivery_attempts.c.id)
        )
        return [r.outcome for r in rows]


def _settled(services: Services, ids: list[str]) -> dict[str, dict[str, Any]] | None:
    rows = {nid: _row(services, nid) for nid in ids}
    done = all(r["status"] in (Status.SENT, Status.DELIVERED, Status.FAILED) for r in rows.values())
    return rows if done else None


def test_a_batch_with_a_poison_item_a_refused_number_and_a_transient_failure_sends_each_good_one_once(
    statuses: Services, twilio_sandbox: Any, herald_env: dict[str, str]
) -> None:
    """The issue's test on the Twilio sandbox: its fault plan answers the batch's first send 429
    (Retry-After 1.5 s, over the in-call wait), its magic number refuses another for good."""
    pipeline = statuses
    busy = _sms(pipeline, BUSY)
    too_long = _sms(pipeline, "+358401230004", body="x" * 1700)
    refused = _sms(pipeline, REFUSED)
    good = [_sms(pipeline, n) for n in GOOD]
    twilio_sandbox.faults.fail_next(1, status=429, code=20429, retry_after=1.5)
    pipeline.emitter.emit(NotificationsRendered(notification_ids=[busy, UNKNOWN, too_long, refused, *good]))

    ids = [busy, too_long, refused, *good]
    rows = wait_for(lambda: _settled(pipeline, ids), timeout=60, what="every item of the batch settled")
    wait_for(
        lambda: queue_depths(herald_env["HERALD_AMQP_URL"], "sms")[2] == 1,
        what="the unknown id dead-lettered",
    )

    captured = twilio_sandbox.messages()
    assert sorted(m["to"] for m in captured) == sorted([BUSY, *GOOD])  # each once, nothing twice
    # The 429, then the refusal and the good ones, then the transient one retried later: no resend.
    statuses_seen = [status for _, status in twilio_sandbox.faults.log]
    assert statuses_seen[:2] == [429, 400]
    assert sorted(statuses_seen) == [201] * 4 + [400, 429]
    sids = {m["to"]: m["sid"] for m in captured}
    for nid, number in zip(good, GOOD, strict=True):
        assert (rows[nid]["status"], rows[nid]["provider_id"]) == (Status.SENT, sids[number])
        assert _attempts(pipeline, nid) == ["accepted"]
    assert (rows[refused]["status"], rows[refused]["error_code"]) == (Status.FAILED, 21211)
    assert _attempts(pipeline, refused) == ["refused"]
    assert rows[too_long]["status"] == Status.FAILED
    assert _attempts(pipeline, too_long) == []
    assert (rows[busy]["status"], rows[busy]["provider_id"]) == (Status.SENT, sids[BUSY])
    assert _attempts(pipeline, busy) == ["retry", "accepted"]
    (refused_at, _), *_, (accepted_at, _) = twilio_sandbox.faults.log
    assert accepted_at - refused_at >= 1.5  # not sooner than Retry-After


def test_claims_left_by_a_batch_cut_short_are_reconciled_against_twilio_and_not_resent(
    statuses: Services, twilio_sandbox: Any
) -> None:
    pipeline = statuses
    ids = [_sms(pipeline, n) for n in GOOD]
    with pipeline.transaction() as conn:
        claim_for_sending_many(conn, ids)  # the batch claimed all three…
    # …Twilio took the first, then the process was killed before recording anything.
    taken = pipeline.sms.send(
        to=GOOD[0], sender=pipeline.settings.twilio_from, body=TEXT, status_callback=None
    )
    with pipeline.transaction() as conn:
        conn.execute(
            update(notifications)
            .where(notifications.c.id.in_(ids))
            .values(attempted_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    pipeline.emitter.emit(NotificationsRendered(notification_ids=ids))

    rows = wait_for(lambda: _settled(pipeline, ids), timeout=60, what="the batch redelivered and settled")
    captured = twilio_sandbox.messages()
    assert sorted(m["to"] for m in captured) == sorted(GOOD)  # the first one not resent
    assert rows[ids[0]]["provider_id"] == taken.provider_id
    assert _attempts(pipeline, ids[0]) == ["reconciled"]
    for nid in ids[1:]:
        assert _attempts(pipeline, nid) == ["ambiguous", "accepted"]


def test_an_email_batch_sends_each_once_over_kept_alive_smtp_with_a_refusal_and_a_retry_per_item(
    statuses: Services, smtp_sandbox: Any
) -> None:
    """The SMTP sandbox's magic addresses: ``reject…`` answers 550, ``flaky…`` 451 the first time."""
    pipeline = statuses
    addresses = ["aino@example.fi", "reject@example.fi", "flaky@example.fi", "eero@example.fi"]
    ids = []
    for address in addresses:
        nid = routed_notification(pipeline, "email", address, event_id=f"evt_{address.split('@')[0]}")
        with pipeline.transaction() as conn:
            store_rendered_email(conn, nid, "Lasku 1001", "Hei", "<p>Hei</p>")
        ids.append(nid)
    pipeline.emitter.emit(EmailsRendered(notification_ids=ids))

    rows = wait_for(lambda: _settled(pipeline, ids), timeout=60, what="the email batch settled")
    arrived = sorted(str(m["To"]) for m in smtp_sandbox.messages)
    assert arrived == ["aino@example.fi", "eero@example.fi", "flaky@example.fi"]  # each once
    aino, reject, flaky, eero = ids
    assert (rows[reject]["status"], rows[reject]["error_code"]) == (Status.FAILED, 550)
    assert _attempts(pipeline, reject) == ["refused"]
    assert _attempts(pipeline, flaky) == ["retry", "accepted"]
    for nid in (aino, flaky, eero):
        assert rows[nid]["status"] == Status.SENT
        assert _attempts(pipeline, nid)[-1] == "accepted"
    assert {rows[n]["provider_id"] for n in (aino, flaky, eero)} == {
        str(m["Message-ID"]) for m in smtp_sandbox.messages
    }
    assert smtp_sandbox.connections == 1  # one kept-alive connection carried the batch

"""Signed webhooks back to the upstream, on both stores: every outward event type, written by the
store function that writes it in production, reaches the receiver sandbox signed and verified by
the ``standardwebhooks`` library, in order per notification; failures, pauses, rotation, replay."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import pytest
from sqlalchemy import func, select

from infra.bootstrap import Services, bootstrap, shutdown
from infra.settings import Settings
from infra.store import webhooks as webhook_store
from infra.store.notifications import StatusChange, apply_statuses
from infra.store.tables import status_outbox
from producers.webhooks import operations as ops
from producers.webhooks.runner import WebhookRunner
from schemas.notifications import Status
from schemas.status_events import StatusEventType, validate_status_event
from tests.conftest import RUN_PREFIX, wait_for
from tests.integration.webhook_helpers import FAST, every_event_type, receiver_with_endpoint
from tooling.sandboxes.webhook_receiver import Received, configure


def _until(runner: WebhookRunner, check: Any, timeout: float = 30.0, what: str = "deliveries") -> Any:
    def step() -> Any:
        runner.round()
        return check()

    return wait_for(step, timeout=timeout, interval=0.05, what=what)


def _by_subject(received: list[Received]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in received:
        data = r.payload["data"]
        subject = data.get("notification_id") or data.get("payment_id") or data.get("mandate_id") or ""
        out.setdefault(subject, []).append(r.payload["type"])
    return out


def test_every_event_type_reaches_the_receiver_signed_verified_and_in_order(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, _endpoint):
        ids = every_event_type(hooks)
        runner = WebhookRunner(hooks)
        try:
            wanted = {t.value for t in StatusEventType}
            _until(runner, lambda: wanted <= {r.type for r in receiver.state.accepted()})
        finally:
            runner.close()
        got = receiver.state.accepted()
        assert all(r.verified for r in receiver.state.received)  # nothing came unsigned or forged
        for r in got:
            validate_status_event(r.payload)  # the published JSON Schema's models
            assert r.webhook_id == r.payload["id"]
            assert "+358401234567" not in str(r.payload)
            assert "aino@example.fi" not in str(r.payload)
        order = _by_subject(got)
        assert order[ids["sms"]] == ["notification.decided", "notification.sent", "notification.delivered"]
        assert order[ids["email"]] == ["notification.decided", "notification.failed"]
        assert order[ids["second_sms"]] == [
            "notification.decided",
            "notification.held",
            "notification.sent",
            "notification.undelivered",
        ]
        assert order[ids["skip"]] == ["notification.decided"]
        assert order[ids["setup"]] == ["notification.decided", "notification.sent", "mandate.setup_link_sent"]
        assert order["PM1"] == ["payment.created", "payment.status_changed"]
        assert order["MD1"] == ["mandate.status_changed", "mandate.status_changed"]
        skip = next(r for r in got if r.payload["data"].get("notification_id") == ids["skip"])
        assert (
            skip.payload["data"].items()
            >= {
                "decision": "skip",
                "reason": "no_phone",
                "contact_id": "P3",
            }.items()
        )
        failed = next(r for r in got if r.type == "notification.failed")
        assert failed.payload["data"]["code"] == 550
        assert failed.payload["data"]["recipient"] == "a***@example.fi"
        sent = next(
            r
            for r in got
            if r.type == "notification.sent" and r.payload["data"]["notification_id"] == ids["sms"]
        )
        assert (
            sent.payload["data"].items()
            >= {
                "org_id": "acme",
                "invoice_id": "INV-1",
                "customer_id": "C1",
                "contact_id": "P1",
                "event_id": "evt_1",
                "recipient": "+358*******67",
                "provider_id": "SM1",
            }.items()
        )
        assert receiver.state.duplicates() == 0


def _outbox_rows(services: Services) -> int:
    with services.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(status_outbox)).scalar_one())


def test_writing_the_same_change_twice_makes_one_event(hooks: Services) -> None:
    ids = every_event_type(hooks, "evt_1")
    before = _outbox_rows(hooks)
    with hooks.transaction() as conn:  # a redelivered report of a status already recorded
        apply_statuses(conn, [StatusChange(ids["sms"], Status.SENT, "again", datetime.now(UTC))])
        apply_statuses(conn, [StatusChange(ids["sms"], Status.DELIVERED, "again", datetime.now(UTC))])
    assert _outbox_rows(hooks) == before


def _first_arrivals(received: list[Received]) -> list[Received]:
    seen: set[str] = set()
    out = []
    for r in received:
        if r.webhook_id not in seen:
            seen.add(r.webhook_id)
            out.append(r)
    return out


def _outbox_order(services: Services) -> dict[str, list[str]]:
    """Each subject's msg ids in the order they were written."""
    with services.reading() as conn:
        rows = conn.execute(
            select(status_outbox.c.subject, status_outbox.c.msg_id).order_by(status_outbox.c.id)
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r.subject, []).append(r.msg_id)
    return out


def _arrival_order(received: list[Received]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in _first_arrivals(received):
        data = r.payload["data"]
        subject = data.get("notification_id") or data.get("payment_id") or data.get("mandate_id")
        subject = subject or f"{data['org_id']}/{data['invoice_id']}"
        out.setdefault(subject, []).append(r.webhook_id)
    return out


@pytest.mark.parametrize("webhook_fields", [{"webhook_pause_after_failures": 0}])
def test_a_receiver_down_for_30_seconds_then_up_gets_everything_once_in_order(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, _endpoint):
        receiver.fail_for(30, 500)
        every_event_type(hooks)
        expected = _outbox_order(hooks)
        total = sum(len(v) for v in expected.values())
        runner = WebhookRunner(hooks)
        stop = threading.Event()
        thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(
                lambda: len(receiver.state.accepted()) >= total,
                timeout=90,
                what="every event after the outage",
            )
        finally:
            stop.set()
            thread.join(timeout=30)
            runner.close()
        failed = [r for r in receiver.state.received if r.answered == 500]
        assert failed, "the outage was seen"
        assert all(r.verified for r in receiver.state.received)
        assert receiver.state.duplicates() == 0  # once each
        assert _arrival_order(receiver.state.accepted()) == expected  # in order per notification
        # The retries were spread out (backoff), not hammered: far fewer than one per 50 ms each.
        assert len(failed) < total * 30 / 0.2


@pytest.mark.parametrize("webhook_fields", [{"webhook_pause_after_failures": 3}])
def test_an_endpoint_paused_after_failures_loses_nothing_and_catches_up_when_resumed(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, endpoint):
        receiver.fail_for(3600, 503)
        every_event_type(hooks, "evt_1")
        runner = WebhookRunner(hooks)
        try:

            def paused() -> Any:
                runner.round()
                return ops.list_(hooks, "acme")[0]["paused_at"]

            wait_for(paused, timeout=30, what="the endpoint paused")
            shown = ops.list_(hooks, "acme")[0]
            assert shown["paused_reason"].startswith(
                "paused after 3 failed attempts in a row; last: HTTP 503"
            )
            attempts_when_paused = len(receiver.state.received)
            every_event_type(hooks, "evt_2")  # events go on while it is paused: queued, not dropped
            for _ in range(5):
                runner.round()
            assert len(receiver.state.received) == attempts_when_paused  # no attempt while paused
            expected = _outbox_order(hooks)
            total = sum(len(v) for v in expected.values())
            assert ops.list_(hooks, "acme")[0]["pending"] == total
            receiver.fail_for(0)
            assert ops.resume(hooks, "acme", endpoint)["pending"] == total
            _until(runner, lambda: len(receiver.state.accepted()) >= total, what="the catch-up")
        finally:
            runner.close()
        assert receiver.state.duplicates() == 0
        assert _arrival_order(receiver.state.accepted()) == expected


def test_during_a_rotation_both_secrets_verify_and_after_it_only_the_new_one(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, endpoint):
        old = receiver.state.secrets[0]
        rotated = ops.rotate(hooks, "acme", endpoint, overlap_hours=1)
        new = rotated["secret"]
        assert new != old
        assert new.startswith("whsec_")
        runner = WebhookRunner(hooks)
        try:
            for secrets in ([old], [new]):  # a receiver still on the old secret, one on the new
                receiver.state.secrets = secrets
                receiver.state.received.clear()
                result = ops.send_test(hooks, "acme", endpoint)
                assert result["response"] == 204, secrets
            # The overlap ends: the old secret is dropped from the signatures.
            ops.rotate(hooks, "acme", endpoint, overlap_hours=0)
            with hooks.reading() as conn:
                row = webhook_store.load_endpoint(conn, endpoint, "acme")
                signing = webhook_store.signing_secrets(row, datetime.now(UTC))
            assert len(signing) == 1
            newest = signing[0]
            assert old not in signing
            assert new not in signing
            receiver.state.secrets = [old, new]
            assert ops.send_test(hooks, "acme", endpoint)["response"] == 401
            receiver.state.secrets = [newest]
            every_event_type(hooks)
            _until(
                runner,
                lambda: len(receiver.state.accepted()) >= 10,
                what="events signed with the newest secret",
            )
        finally:
            runner.close()


def test_replay_sends_again_with_the_same_webhook_ids(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, endpoint):
        since = datetime.now(UTC) - timedelta(seconds=1)
        every_event_type(hooks)
        total = sum(len(v) for v in _outbox_order(hooks).values())
        runner = WebhookRunner(hooks)
        try:
            _until(runner, lambda: len(receiver.state.accepted()) >= total)
            first = [r.webhook_id for r in receiver.state.accepted()]
            assert ops.replay(hooks, "acme", endpoint, since)["queued"] == total
            _until(runner, lambda: len(receiver.state.accepted()) >= 2 * total, what="the replay")
        finally:
            runner.close()
        again = [r.webhook_id for r in receiver.state.accepted()][total:]
        assert sorted(again) == sorted(first)
        assert receiver.state.duplicates() == total
        shown = ops.deliveries(hooks, "acme", endpoint, limit=1000)
        assert len(shown) == 2 * total
        assert {a["response"] for a in shown} == {204}


@pytest.mark.parametrize("webhook_fields", [{"webhook_pause_after_failures": 0}])
def test_retry_after_is_honoured_and_each_attempt_is_recorded(hooks: Services) -> None:
    with receiver_with_endpoint(hooks, events=["payment.created"]) as (receiver, endpoint):
        configure(receiver.state, {"times": 1, "status": 429, "retry_after": 2})
        every_event_type(hooks)
        runner = WebhookRunner(hooks)
        try:
            _until(runner, lambda: receiver.state.accepted())
        finally:
            runner.close()
        got = [r for r in receiver.state.received]
        assert [r.type for r in got] == ["payment.created", "payment.created"]  # the filter held
        first, second = (datetime.fromisoformat(r.at) for r in got)
        assert (second - first).total_seconds() >= 2 - 0.1  # not before the asked time
        attempts = ops.deliveries(hooks, "acme", endpoint)
        assert [(a["response"], a["outcome"]) for a in attempts] == [(204, "delivered"), (429, "retry")]


def test_every_event_is_published_to_the_status_exchange_in_order_with_its_type_as_routing_key(
    amqp_url: str, database_url: str
) -> None:
    prefix = f"{RUN_PREFIX}-st"
    settings = Settings(
        database_url=database_url, amqp_url=amqp_url, queue_prefix=prefix, **{**FAST, "status_exchange": True}
    )  # type: ignore[arg-type]
    services = bootstrap(settings)
    runner = WebhookRunner(services)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    try:
        runner.round()  # declares the exchange (nothing to publish yet)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, f"{prefix}.notifications", routing_key="#")
        mine = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(mine, f"{prefix}.notifications", routing_key="payment.*")
        every_event_type(services)
        expected = _outbox_order(services)
        total = sum(len(v) for v in expected.values())
        _until(runner, lambda: channel.queue_declare(queue, passive=True).method.message_count >= total)
        got = []
        while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
            method, properties, body = message
            payload = json.loads(body)
            assert method.routing_key == payload["type"]
            assert properties.message_id == payload["id"]
            got.append(payload)
        assert len(got) == total  # each once
        by_subject: dict[str, list[str]] = {}
        for payload in got:
            data = payload["data"]
            subject = data.get("notification_id") or data.get("payment_id") or data.get("mandate_id")
            by_subject.setdefault(subject or f"{data['org_id']}/{data['invoice_id']}", []).append(
                payload["id"]
            )
        assert by_subject == expected
        assert channel.queue_declare(mine, passive=True).method.message_count == 2  # the topic filter
        runner.round()
        assert channel.queue_declare(queue, passive=True).method.message_count == 0  # not published twice
    finally:
        connection.close()
        runner.close()
        shutdown(services)


@pytest.mark.parametrize(
    "webhook_fields", [{"webhook_pause_after_failures": 0, "webhook_retry_window_hours": 1 / 3600}]
)
def test_a_delivery_failing_for_the_whole_retry_window_is_given_up_and_stays_replayable(
    hooks: Services,
) -> None:
    with receiver_with_endpoint(hooks, events=["payment.created", "payment.status_changed"]) as (
        receiver,
        endpoint,
    ):
        since = datetime.now(UTC) - timedelta(seconds=1)
        receiver.fail_for(3600, 500)
        every_event_type(hooks)
        runner = WebhookRunner(hooks)
        try:

            def given_up() -> bool:
                return [a["outcome"] for a in ops.deliveries(hooks, "acme", endpoint)].count("gave_up") == 2

            _until(runner, given_up, what="both payment events given up after the window")
            assert ops.list_(hooks, "acme")[0]["pending"] == 0
            receiver.fail_for(0)
            assert ops.replay(hooks, "acme", endpoint, since)["queued"] == 2
            _until(runner, lambda: len(receiver.state.accepted()) == 2, what="the replayed events")
        finally:
            runner.close()
        assert [r.type for r in receiver.state.accepted()] == ["payment.created", "payment.status_changed"]

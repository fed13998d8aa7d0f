"""Retention of the status outbox (``infra.store.webhooks.prune``, run by the ``webhooks`` process):
an event it is done with goes once past ``HERALD_WEBHOOK_RETENTION_DAYS``, with its deliveries and
their attempts; what is recent, still pending or not yet published stays, on either store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from infra.bootstrap import Services
from infra.store import webhooks as store
from infra.store.tables import status_outbox, webhook_attempts, webhook_deliveries
from producers.webhooks import operations as ops
from producers.webhooks.runner import WebhookRunner
from tests.conftest import wait_for
from tests.integration.webhook_helpers import every_event_type, receiver_with_endpoint


def _rows(services: Services) -> dict[str, int]:
    with services.reading() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (status_outbox, webhook_deliveries, webhook_attempts)
        }


def _outbox_ids(services: Services) -> list[int]:
    with services.reading() as conn:
        return list(conn.execute(select(status_outbox.c.id).order_by(status_outbox.c.id)).scalars())


def _deliver_all(runner: WebhookRunner, receiver: Any, count: int) -> None:
    def step() -> bool:
        runner.round()
        return len(receiver.state.accepted()) >= count

    wait_for(step, timeout=30, interval=0.05, what=f"{count} events delivered")


def _prune(services: Services, before: datetime, *, published: bool = False, limit: int = 1000) -> int:
    with services.transaction() as conn:
        return store.prune(conn, before, published=published, limit=limit)


def test_delivered_events_past_the_cut_go_with_their_deliveries_and_attempts_and_later_ones_stay(
    hooks: Services,
) -> None:
    with receiver_with_endpoint(hooks) as (receiver, endpoint):
        runner = WebhookRunner(hooks)
        try:
            every_event_type(hooks, "evt_old")
            old = _outbox_ids(hooks)
            _deliver_all(runner, receiver, len(old))
            cut = datetime.now(UTC)
            every_event_type(hooks, "evt_new")
            _deliver_all(runner, receiver, len(_outbox_ids(hooks)))
        finally:
            runner.close()
        before = _rows(hooks)
        recent = [i for i in _outbox_ids(hooks) if i not in old]
        assert old
        assert recent

        assert _prune(hooks, cut) == len(old)

        assert _outbox_ids(hooks) == recent
        after = _rows(hooks)
        assert after["webhook_deliveries"] == before["webhook_deliveries"] - len(old)  # one endpoint
        assert after["webhook_attempts"] == before["webhook_attempts"] - len(old)  # each took once
        assert _prune(hooks, cut) == 0  # nothing more is past the cut
        # What is left is what replay and the delivery log still reach.
        assert len(ops.deliveries(hooks, "acme", endpoint)) == len(recent)
        assert ops.replay(hooks, "acme", endpoint, cut - timedelta(days=1))["queued"] == len(recent)


def test_a_pending_delivery_keeps_its_event_however_old(hooks: Services) -> None:
    with receiver_with_endpoint(hooks) as (receiver, _endpoint):
        receiver.fail_for(3600, 503)  # a receiver down: every delivery stays pending
        every_event_type(hooks)
        runner = WebhookRunner(hooks)
        try:
            runner.round()  # fanned out, first attempts failed
        finally:
            runner.close()
    rows = _rows(hooks)
    assert rows["webhook_deliveries"] == rows["status_outbox"] > 0
    assert _prune(hooks, datetime.now(UTC) + timedelta(days=365)) == 0
    assert _rows(hooks) == rows  # the failed attempts are kept with their pending deliveries too


def test_an_event_not_fanned_out_or_not_yet_published_stays(hooks: Services) -> None:
    every_event_type(hooks)  # no endpoint, no webhooks round: nothing fanned out or published
    written = _outbox_ids(hooks)
    future = datetime.now(UTC) + timedelta(days=365)
    assert _prune(hooks, future) == 0
    with hooks.transaction() as conn:
        assert store.fan_out(conn, datetime.now(UTC)) == len(written)  # no endpoint: nothing to deliver
    assert _prune(hooks, future, published=True) == 0  # the exchange is on and has not had them
    with hooks.transaction() as conn:
        store.mark_published(conn, written[:2], datetime.now(UTC))
    assert _prune(hooks, future, published=True) == 2
    assert _outbox_ids(hooks) == written[2:]


def test_a_pass_deletes_at_most_its_limit_oldest_first(hooks: Services) -> None:
    every_event_type(hooks)
    written = _outbox_ids(hooks)
    with hooks.transaction() as conn:
        store.fan_out(conn, datetime.now(UTC))
    future = datetime.now(UTC) + timedelta(days=365)
    assert _prune(hooks, future, limit=2) == 2
    assert _outbox_ids(hooks) == written[2:]


def test_the_webhooks_process_prunes_by_its_retention_setting_on_its_first_round(hooks: Services) -> None:
    every_event_type(hooks)
    with hooks.transaction() as conn:
        store.fan_out(conn, datetime.now(UTC))
    written = len(_outbox_ids(hooks))
    month_later = datetime.now(UTC) + timedelta(days=hooks.settings.webhook_retention_days + 1)
    today = WebhookRunner(hooks)
    try:
        assert today.round().pruned == 0  # 30 days have not passed
    finally:
        today.close()
    later = WebhookRunner(hooks, now=lambda: month_later)
    try:
        assert later.round().pruned == written
        assert later.round().pruned == 0  # the next pass is PRUNE_EVERY away
    finally:
        later.close()
    assert _rows(hooks) == {"status_outbox": 0, "webhook_deliveries": 0, "webhook_attempts": 0}

"""Render hands the senders batches; a sender stage without a batch function of its own takes them
one item after another through its single-item function (``workers.registry.item_by_item``), each
item with the outcome it has alone."""

from __future__ import annotations

from typing import Any

import pytest

from infra.store.notifications import store_rendered
from schemas.messages import NotificationsRendered
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import Stages
from workers import registry


def _rendered(stages: Stages, recipient: str, event_id: str) -> str:
    nid = routed_notification(stages.services, "sms", recipient, event_id=event_id)
    with stages.services.transaction() as conn:
        store_rendered(conn, nid, f"Lasku {event_id}")
    return nid


def _reported(stages: Stages) -> list[tuple[str, str]]:
    return [(body["notification_id"], body["status"]) for _, body in stages.take("history")]


@pytest.mark.skipif(
    registry.HANDLERS.get(NotificationsRendered) is not None, reason="the sms stage has a batch function"
)
def test_each_sms_of_a_batch_is_sent_once_and_an_unknown_one_is_dead_lettered_alone(stages: Stages) -> None:
    first = _rendered(stages, "+358401234567", "evt_1")
    second = _rendered(stages, "+358401234568", "evt_2")
    unknown = "ntf_" + "0" * 32
    stages.deliver(NotificationsRendered(notification_ids=[first, unknown, second]))
    stages.run("sms")

    assert sorted(m["to"] for m in stages.sms.sent) == ["+358401234567", "+358401234568"]
    assert _reported(stages) == [(first, "sent"), (second, "sent")]
    (dead,) = stages.dead_letters("sms")
    assert (dead.actor_name, dead.args[0]) == ("send_sms", {"notification_id": unknown})
    assert "unknown notification" in str(dead._exception)

    stages.deliver(NotificationsRendered(notification_ids=[first, unknown, second]))  # redelivered
    stages.run("sms")
    assert len(stages.sms.sent) == 2  # nobody told twice: each is only reported again
    assert _reported(stages) == [(first, "sent"), (second, "sent")]


@pytest.mark.skipif(
    registry.HANDLERS.get(NotificationsRendered) is not None, reason="the sms stage has a batch function"
)
def test_an_item_to_try_later_goes_back_alone_with_the_rest_after_it(
    stages: Stages, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dramatiq

    first = _rendered(stages, "+358401234567", "evt_1")
    later = _rendered(stages, "+358401234568", "evt_2")
    rest = _rendered(stages, "+358401234569", "evt_3")
    original = registry.HANDLERS[registry.NotificationRendered]
    calls: list[str] = []

    def busy_once(svc: Any, body: Any) -> None:
        calls.append(body["notification_id"])
        if body["notification_id"] == later and calls.count(later) == 1:
            raise dramatiq.Retry("sender busy", delay=5)
        original(svc, body)

    actor = stages.broker.get_actor("send_sms_batch")
    monkeypatch.setattr(actor, "fn", _rebuilt(stages, busy_once))
    stages.deliver(NotificationsRendered(notification_ids=[first, later, rest]))
    stages.run("sms")

    assert calls[:2] == [first, later]  # the batch stopped at the busy one
    assert sorted(m["to"] for m in stages.sms.sent) == ["+358401234567", "+358401234568", "+358401234569"]
    assert stages.dead_letters("sms") == []


def _rebuilt(stages: Stages, single: Any) -> Any:
    handler = registry.item_by_item(NotificationsRendered, registry.NotificationRendered, single)
    return lambda body: handler(stages.services, body)

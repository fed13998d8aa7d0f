"""The ``history`` actor on the StubBroker: every status report kept once, the notification moved
only forward, a report that moves nothing kept as such."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import select

from infra.store.notifications import claim_for_sending
from infra.store.tables import status_changes
from schemas.messages import DeliveryStatusesReported, DeliveryStatusReported, StatusReport
from schemas.notifications import Status
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import Stages


def _sending(stages: Stages) -> str:
    nid = routed_notification(stages.services, "sms", "+358401234567")
    with stages.services.transaction() as conn:
        claim_for_sending(conn, nid)
    return nid


def _sending_another(stages: Stages) -> str:
    nid = routed_notification(stages.services, "sms", "+358401234568", event_id="evt_other")
    with stages.services.transaction() as conn:
        claim_for_sending(conn, nid)
    return nid


def _report(stages: Stages, nid: str, status: Status, **fields: Any) -> None:
    stages.deliver(
        DeliveryStatusReported(
            notification_id=nid,
            status=status,
            source="twilio_callback",
            occurred_at=datetime.now(UTC),
            **fields,
        )
    )


def _timeline(stages: Stages, nid: str) -> list[tuple[str, str | None]]:
    with stages.services.reading() as conn:
        rows = conn.execute(
            select(status_changes.c.status, status_changes.c.detail)
            .where(status_changes.c.notification_id == nid)
            .order_by(status_changes.c.id)
        )
        return [(r.status, r.detail) for r in rows]


def test_reports_move_the_notification_forward_and_each_is_kept_in_its_timeline(stages: Stages) -> None:
    nid = _sending(stages)
    _report(stages, nid, Status.SENT, provider_id="SM1")
    _report(stages, nid, Status.DELIVERED, provider_id="SM1")
    stages.run("history")

    row = stages.notification(nid)
    assert (row.status, row.provider_id) == ("delivered", "SM1")
    assert _timeline(stages, nid) == [("sent", None), ("delivered", None)]
    assert stages.dead_letters("history") == []


def test_a_late_report_moves_nothing_back_and_says_so(stages: Stages) -> None:
    nid = _sending(stages)
    _report(stages, nid, Status.DELIVERED, provider_id="SM1")
    stages.run("history")
    _report(stages, nid, Status.SENT, provider_id="SM1")
    _report(stages, nid, Status.UNDELIVERED, error_code=30003)
    stages.run("history")

    row = stages.notification(nid)
    assert (row.status, row.error_code) == ("delivered", None)
    assert _timeline(stages, nid) == [
        ("delivered", None),
        ("sent", "ignored: already delivered"),
        ("undelivered", "ignored: already delivered"),
    ]


def test_the_same_report_redelivered_is_kept_once(stages: Stages) -> None:
    nid = _sending(stages)
    for _ in range(3):
        _report(stages, nid, Status.SENT, provider_id="SM1")
    stages.run("history")

    assert stages.notification(nid).status == "sent"
    assert _timeline(stages, nid) == [("sent", None)]


def test_a_report_for_an_unknown_notification_is_dead_lettered_at_once(stages: Stages) -> None:
    _report(stages, "ntf_" + "0" * 32, Status.SENT)
    stages.run("history")

    (dead,) = stages.dead_letters("history")
    assert "unknown notification" in str(dead._exception)
    assert dead.options["retries"] == 1  # tried once: permanent, never retried


# -- batches (issue 15) ---------------------------------------------------------------------------


def _counted(channel: str, status: str) -> float:
    return (
        REGISTRY.get_sample_value("herald_notifications_total", {"channel": channel, "status": status}) or 0.0
    )


def _report_body(nid: str, status: Status, **fields: Any) -> dict[str, Any]:
    report = StatusReport(
        notification_id=nid, status=status, source="twilio_callback", occurred_at=datetime.now(UTC), **fields
    )
    return report.model_dump(mode="json", exclude_none=True)


def test_a_batch_applies_its_reports_in_order_and_skips_an_unknown_notification(stages: Stages) -> None:
    first, second = _sending(stages), _sending_another(stages)
    unknown = "ntf_" + "0" * 32
    reports = [
        _report_body(first, Status.SENT, provider_id="SM1"),
        _report_body(unknown, Status.SENT),
        _report_body(first, Status.DELIVERED, provider_id="SM1"),
        _report_body(second, Status.SENT, provider_id="SM2"),
    ]
    before = (_counted("sms", "sent"), _counted("sms", "delivered"))
    stages.deliver(DeliveryStatusesReported.model_validate({"reports": reports}))
    stages.run("history")

    assert (stages.notification(first).status, stages.notification(second).status) == ("delivered", "sent")
    assert _timeline(stages, first) == [("sent", None), ("delivered", None)]
    assert _timeline(stages, unknown) == []
    assert stages.dead_letters("history") == []  # the unknown one is skipped, not the batch failed
    assert (_counted("sms", "sent"), _counted("sms", "delivered")) == (before[0] + 2, before[1] + 1)

    stages.deliver(DeliveryStatusesReported.model_validate({"reports": reports}))  # redelivered
    stages.run("history")

    assert (stages.notification(first).status, stages.notification(second).status) == ("delivered", "sent")
    assert _timeline(stages, first) == [("sent", None), ("delivered", None)]  # kept once
    assert (_counted("sms", "sent"), _counted("sms", "delivered")) == (before[0] + 2, before[1] + 1)
    assert stages.dead_letters("history") == []

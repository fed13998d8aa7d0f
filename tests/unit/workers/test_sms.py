"""The ``sms`` actor on the StubBroker with ``FakeSms``: the attempt recorded before the call, one
message per notification however often it is delivered, every outcome reported to history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.store.integrations import mark_disconnected
from infra.store.notifications import store_rendered
from infra.store.organisations import update_org
from schemas.messages import NotificationRendered
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import PUBLIC_URL, Stages

MOBILE = "+358401234567"


def _rendered(stages: Stages, recipient: str = MOBILE, body: str = "Lasku 1001: 1 234,50 €") -> str:
    nid = routed_notification(stages.services, "sms", recipient)
    with stages.services.transaction() as conn:
        store_rendered(conn, nid, body)
    return nid


def _send(stages: Stages, nid: str) -> None:
    stages.deliver(NotificationRendered(notification_id=nid))
    stages.run("sms")


def _reports(stages: Stages) -> list[dict[str, Any]]:
    found = stages.take("history")
    assert {actor for actor, _ in found} <= {"record_status"}
    return [body for _, body in found]


def test_a_rendered_sms_is_sent_once_with_its_callback_url_and_reported_sent(stages: Stages) -> None:
    nid = _rendered(stages)
    _send(stages, nid)

    (sent,) = stages.sms.sent
    assert (sent["to"], sent["from"], sent["body"]) == (MOBILE, "+15005550006", "Lasku 1001: 1 234,50 €")
    assert sent["callback"] == f"{PUBLIC_URL}/callbacks/twilio/{nid}"
    row = stages.notification(nid)
    assert (row.status, row.provider_id, row.attempts) == ("sending", sent["sid"], 1)
    assert stages.attempts(nid) == ["accepted"]
    (report,) = _reports(stages)
    assert (report["notification_id"], report["status"], report["source"]) == (nid, "sent", "sms")
    assert report["provider_id"] == sent["sid"]


def test_a_redelivered_message_sends_nothing_again_and_reports_again(stages: Stages) -> None:
    nid = _rendered(stages)
    _send(stages, nid)
    _send(stages, nid)
    _send(stages, nid)

    assert len(stages.sms.sent) == 1
    assert stages.notification(nid).attempts == 1
    reports = _reports(stages)
    assert [r["status"] for r in reports] == ["sent"] * 3
    assert {r["provider_id"] for r in reports} == {stages.sms.sent[0]["sid"]}


def test_a_number_twilio_refuses_for_good_is_failed_with_its_code_and_not_retried(stages: Stages) -> None:
    stages.sms.refuse["+15005550001"] = 21211
    nid = _rendered(stages, "+15005550001")
    _send(stages, nid)

    assert stages.sms.sent == []
    row = stages.notification(nid)
    assert (row.error_code, row.attempts, row.provider_id) == (21211, 1, None)
    assert stages.attempts(nid) == ["refused"]
    (report,) = _reports(stages)
    assert (report["status"], report["error_code"]) == ("failed", 21211)
    assert stages.dead_letters("sms") == []

    _send(stages, nid)  # redelivered: reported again, never sent
    assert stages.sms.sent == []
    assert [r["status"] for r in _reports(stages)] == ["failed"]


def test_a_disconnected_twilio_integration_skips_the_sms_and_says_why(stages: Stages) -> None:
    with stages.services.transaction() as conn:
        mark_disconnected(conn, "twilio", datetime.now(UTC))
    nid = _rendered(stages)
    _send(stages, nid)

    assert stages.sms.sent == []
    assert stages.notification(nid).status == "skipped"
    (report,) = _reports(stages)
    assert report["status"] == "skipped"
    assert report["detail"].startswith("sms_not_connected")


def test_an_organisation_out_of_credit_has_its_sms_skipped_not_sent(stages: Stages) -> None:
    with stages.services.transaction() as conn:
        update_org(conn, "acme", {"buys_credit": True, "credit_balance": 0})
    nid = _rendered(stages)
    _send(stages, nid)

    assert stages.sms.sent == []
    assert stages.notification(nid).status == "skipped"
    (report,) = _reports(stages)
    assert (report["status"], report["detail"]) == ("skipped", "insufficient_credit: needs 1, balance 0")


def test_a_body_over_1600_characters_is_failed_for_good_and_never_sent(stages: Stages) -> None:
    nid = _rendered(stages, body="x" * 1700)
    _send(stages, nid)

    assert stages.sms.sent == []
    (report,) = _reports(stages)
    assert report["status"] == "failed"
    assert "1700 characters" in report["detail"]
    assert stages.dead_letters("sms") == []

"""The ``email`` actor on the StubBroker with ``FakeEmail``: one message per notification with a
Message-ID of its own, a refusal failed for good, every outcome reported to history."""

from __future__ import annotations

from typing import Any

from infra.store.notifications import store_rendered_email
from schemas.messages import EmailRendered
from tests.integration.stored import routed_notification
from tests.unit.workers.conftest import Stages


def _rendered(stages: Stages, address: str = "aino@example.fi", subject: str = "Lasku 1001") -> str:
    nid = routed_notification(stages.services, "email", address)
    with stages.services.transaction() as conn:
        store_rendered_email(conn, nid, subject, "Hei Aino", "<p>Hei Aino</p>")
    return nid


def _send(stages: Stages, nid: str) -> None:
    stages.deliver(EmailRendered(notification_id=nid))
    stages.run("email")


def _reports(stages: Stages) -> list[dict[str, Any]]:
    return [body for actor, body in stages.take("history") if actor == "record_status"]


def test_a_rendered_email_is_sent_once_as_text_and_html_and_reported_sent(stages: Stages) -> None:
    nid = _rendered(stages)
    _send(stages, nid)

    (message,) = stages.email.sent
    assert (message["To"], message["Subject"]) == ("aino@example.fi", "Lasku 1001")
    assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    row = stages.notification(nid)
    assert (row.status, row.provider_id, row.attempts) == ("sending", message["Message-ID"], 1)
    assert stages.attempts(nid) == ["accepted"]
    (report,) = _reports(stages)
    assert (report["notification_id"], report["status"], report["source"]) == (nid, "sent", "email")
    assert report["provider_id"] == message["Message-ID"]


def test_a_redelivered_message_sends_nothing_twice(stages: Stages) -> None:
    nid = _rendered(stages)
    _send(stages, nid)
    _send(stages, nid)

    assert len(stages.email.sent) == 1
    assert stages.attempts(nid) == ["accepted"]
    assert [r["status"] for r in _reports(stages)] == ["sent", "sent"]


def test_an_address_the_server_refuses_with_550_is_failed_with_the_code_and_not_retried(
    stages: Stages,
) -> None:
    stages.email.refuse["nobody@example.fi"] = 550
    nid = _rendered(stages, "nobody@example.fi")
    _send(stages, nid)

    assert stages.email.sent == []
    row = stages.notification(nid)
    assert (row.error_code, row.attempts, row.provider_id) == (550, 1, None)
    assert stages.attempts(nid) == ["refused"]
    (report,) = _reports(stages)
    assert (report["status"], report["error_code"]) == ("failed", 550)
    assert stages.dead_letters("email") == []


def test_a_line_break_in_the_subject_is_failed_for_good_and_never_sent(stages: Stages) -> None:
    nid = _rendered(stages, subject="Lasku 1001\r\nBcc: victim@example.com")
    _send(stages, nid)

    assert stages.email.sent == []
    (report,) = _reports(stages)
    assert report["status"] == "failed"
    assert "line break" in report["detail"]
    assert stages.dead_letters("email") == []


def test_a_notification_never_rendered_as_an_email_is_dead_lettered_at_once(stages: Stages) -> None:
    nid = routed_notification(stages.services, "email", "aino@example.fi")
    _send(stages, nid)

    (dead,) = stages.dead_letters("email")
    assert "not rendered as an email" in str(dead._exception)
    assert dead.options["retries"] == 1  # tried once: permanent, never retried
    assert stages.email.sent == []

"""The email channel on a real RabbitMQ and store, sending to the SMTP sandbox."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.attempts import load_attempts
from infra.store.history import invoice_history
from infra.store.tables import notifications
from schemas.notifications import Status
from tests.conftest import wait_for
from tests.factories import email_customer, invoice_created
from tests.integration.conftest import cut_short, import_customers, publish, queue_depths


def _import_email_contact(services: Services, address: str) -> None:
    import_customers(services, email_customer(address, mobile="+358 40 1234567", locale="fi"))


def _email_row(services: Services, settled: tuple[Status, ...]) -> dict[str, Any] | None:
    with services.transaction() as conn:
        rows = [
            dict(r)
            for r in conn.execute(select(notifications).where(notifications.c.channel == "email")).mappings()
        ]
    return rows[0] if len(rows) == 1 and rows[0]["status"] in settled else None


def _published(services: Services, address: str, settled: tuple[Status, ...], what: str) -> dict[str, Any]:
    """An invoice published to the one contact, at ``address``; its email row once ``settled``."""
    _import_email_contact(services, address)
    publish(services.settings, invoice_created())
    return wait_for(lambda: _email_row(services, settled), timeout=30, what=what)


def _attempts(services: Services, nid: str) -> list[str]:
    with services.transaction() as conn:
        return [a["outcome"] for a in load_attempts(conn, [nid])]


def test_an_invoice_to_an_email_contact_arrives_as_text_and_html_and_history_says_sent(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    row = _published(pipeline, "aino@example.fi", (Status.SENT,), "the email sent")
    (message,) = smtp_sandbox.messages
    assert isinstance(message, EmailMessage)
    nid = row["id"]
    assert message["Message-ID"] == f"<{nid}@acme.example>" == row["provider_id"]
    assert message["X-Herald-Notification-Id"] == nid
    assert message["From"] == "Acme Billing <billing@acme.example>"
    assert message["To"] == "aino@example.fi"
    assert message["Date"]
    assert message["Subject"] == row["subject"]
    assert "1001" in message["Subject"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == row["body"].strip()
    assert html.get_content().strip() == row["html"].strip()
    assert "<" in row["html"]
    assert "https://billing.example/i/INV-1" in text.get_content()
    assert _attempts(pipeline, nid) == ["accepted"]

    with pipeline.transaction() as conn:
        timeline = invoice_history(conn, "INV-1", "acme")["timeline"]
    email = [(e["what"], e.get("source")) for e in timeline if e.get("notification_id") == nid]
    assert email == [("decided", None), ("attempt", None), ("sent", "email")]


def test_an_address_the_server_refuses_with_550_is_failed_with_the_code_and_not_retried(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    row = _published(pipeline, "reject@example.fi", (Status.FAILED,), "the refusal recorded")
    assert (row["error_code"], row["attempts"], row["provider_id"]) == (550, 1, None)
    assert smtp_sandbox.messages == []
    assert _attempts(pipeline, row["id"]) == ["refused"]
    url = pipeline.settings.amqp_url.get_secret_value()
    assert queue_depths(url, "email") == (0, 0, 0)  # not retried, not dead-lettered


def test_a_451_is_retried_and_the_email_arrives_once(pipeline: Services, smtp_sandbox: Any) -> None:
    # The sandbox answers 451 once, then accepts.
    row = _published(pipeline, "flaky@example.fi", (Status.SENT,), "the email sent on retry")
    assert len(smtp_sandbox.messages) == 1
    assert row["attempts"] == 1  # one claim: the 451 was retried within the call (tenacity)
    assert _attempts(pipeline, row["id"]) == ["retry", "accepted"]


def test_a_redelivered_message_sends_nothing_twice(pipeline: Services, smtp_sandbox: Any) -> None:
    from schemas.messages import EmailRendered, NotificationDecided

    _import_email_contact(pipeline, "aino@example.fi")
    publish(pipeline.settings, invoice_created(), invoice_created())  # the same event again
    row = wait_for(lambda: _email_row(pipeline, (Status.SENT,)), timeout=30, what="the email sent")
    for _ in range(3):
        pipeline.emitter.emit(EmailRendered(notification_id=row["id"]))
        pipeline.emitter.emit(NotificationDecided(notification_id=row["id"]))
    url = pipeline.settings.amqp_url.get_secret_value()
    wait_for(lambda: queue_depths(url, "email")[0] == 0, timeout=30, what="the email queue drained")
    wait_for(lambda: queue_depths(url, "render")[0] == 0, timeout=30, what="the render queue drained")
    assert len(smtp_sandbox.messages) == 1
    assert _attempts(pipeline, row["id"]) == ["accepted"]


def test_an_attempt_cut_short_is_resent_with_the_same_message_id(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    from schemas.messages import EmailRendered

    row = _published(pipeline, "aino@example.fi", (Status.SENT,), "the first send")
    cut_short(pipeline, row["id"])  # as if the worker had crashed after DATA, before the server's 250
    pipeline.emitter.emit(EmailRendered(notification_id=row["id"]))
    wait_for(lambda: len(smtp_sandbox.messages) == 2, timeout=30, what="the resend")
    again = wait_for(
        lambda: (r := _email_row(pipeline, (Status.SENT, Status.SENDING))) and r["provider_id"] and r,
        timeout=30,
        what="the resend recorded",
    )
    first, second = smtp_sandbox.messages
    assert first["Message-ID"] == second["Message-ID"] == again["provider_id"]


def test_the_adapter_delivers_a_long_non_ascii_message_intact_and_sorts_the_sandboxs_answers(
    smtp_sandbox: Any,
) -> None:
    from infra.adapters.email import OutgoingEmail, SmtpConfig, SmtpEmail
    from infra.errors import PermanentProviderError, TransientProviderError

    gateway = SmtpEmail(SmtpConfig(smtp_sandbox.host, smtp_sandbox.port, "billing@acme.example"))
    text = "Hei Aino, lasku erääntyy 14.12.2026: 9 101,50 €. " * 60  # one long line, well over 1,000 bytes
    html = "<p>" + "請求書 1001 の期日は 2026年12月14日です。" * 60 + "</p>"
    email = OutgoingEmail("ntf_" + "cd" * 16, "aino@example.fi", "Lasku 1001: 請求書", text, html)
    sent = gateway.send(email)
    (message,) = smtp_sandbox.messages
    assert message["Message-ID"] == sent.message_id == f"<{email.notification_id}@acme.example>"
    assert message["Subject"] == "Lasku 1001: 請求書"
    plain, rich = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None
    assert rich is not None
    assert plain.get_content().rstrip("\n") == text
    assert rich.get_content().rstrip("\n") == html

    with pytest.raises(PermanentProviderError) as refused:
        gateway.send(OutgoingEmail(email.notification_id, "reject@example.fi", "s", "t", "<p>h</p>"))
    assert refused.value.code == 550
    with pytest.raises(TransientProviderError) as busy:
        gateway.send(OutgoingEmail(email.notification_id, "busy@example.fi", "s", "t", "<p>h</p>"))
    assert (busy.value.code, busy.value.accepted_unknown) == (451, False)
    assert len(smtp_sandbox.messages) == 1


def test_an_smtp_server_that_does_not_answer_is_transient(smtp_sandbox: Any) -> None:
    import socket

    from infra.adapters.email import OutgoingEmail, SmtpConfig, SmtpEmail
    from infra.errors import TransientProviderError

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gateway = SmtpEmail(SmtpConfig("127.0.0.1", port, "billing@acme.example", timeout=2))
    with pytest.raises(TransientProviderError) as refused:
        gateway.send(OutgoingEmail("ntf_" + "ef" * 16, "aino@example.fi", "s", "t", "<p>h</p>"))
    assert not refused.value.accepted_unknown


def test_a_line_break_in_a_header_is_failed_for_good_with_its_reason_and_never_sent(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    from infra.store.notifications import store_rendered_email
    from schemas.messages import EmailRendered
    from tests.integration.stored import routed_notification

    _import_email_contact(pipeline, "aino@example.fi")
    nid = routed_notification(pipeline, "email", "aino@example.fi")
    with pipeline.transaction() as conn:
        # As if rendered before subjects were made one line: the email stage must end it on its own.
        store_rendered_email(conn, nid, "Lasku 1001\r\nBcc: victim@example.com", "Hei", "<p>Hei</p>")
    pipeline.emitter.emit(EmailRendered(notification_id=nid))

    row = wait_for(lambda: _email_row(pipeline, (Status.FAILED,)), timeout=30, what="the refusal recorded")
    assert (row["id"], row["attempts"], row["provider_id"]) == (nid, 1, None)
    assert _attempts(pipeline, nid) == ["refused"]
    with pipeline.transaction() as conn:
        timeline = invoice_history(conn, "INV-1", "acme")["timeline"]
    (failed,) = [e for e in timeline if e["what"] == "failed"]
    assert "subject" in failed["detail"]
    assert "line break" in failed["detail"]
    assert smtp_sandbox.messages == []
    url = pipeline.settings.amqp_url.get_secret_value()
    wait_for(lambda: queue_depths(url, "email") == (0, 0, 0), timeout=10, what="nothing left to retry")


def test_a_line_break_in_a_stored_invoice_number_never_reaches_a_header_and_is_not_retried(
    pipeline: Services, smtp_sandbox: Any
) -> None:
    """Stored before the producer refused control characters: the render stage ends it for good
    (the event no longer validates), and nothing is sent. A subject is made one line as well
    (``tests/unit/test_templates.py``), so no path puts a line break in a header."""
    from schemas.messages import NotificationDecided
    from tests.integration.stored import routed_notification

    _import_email_contact(pipeline, "aino@example.fi")
    nid = routed_notification(pipeline, "email", "aino@example.fi", number="1001\r\nBcc: victim@example.com")
    pipeline.emitter.emit(NotificationDecided(notification_id=nid))

    row = wait_for(lambda: _email_row(pipeline, (Status.FAILED,)), timeout=30, what="the failure recorded")
    assert (row["id"], row["provider_id"]) == (nid, None)
    with pipeline.transaction() as conn:
        timeline = invoice_history(conn, "INV-1", "acme")["timeline"]
    (failed,) = [e for e in timeline if e["what"] == "failed"]
    assert "number" in failed["detail"]
    assert smtp_sandbox.messages == []
    url = pipeline.settings.amqp_url.get_secret_value()
    wait_for(lambda: queue_depths(url, "render") == (0, 0, 0), timeout=10, what="nothing left to retry")

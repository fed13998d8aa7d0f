"""The SMTP adapter: the message it builds and how it sorts SMTP's answers."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from infra.adapters.email import (
    OutgoingEmail,
    UnsendableEmail,
    build_message,
    classify_smtp_error,
    message_id,
)
from infra.errors import PermanentProviderError, TransientProviderError
from infra.retry_policy import is_permanent
from tests.fakes import FakeEmail
from tooling.sandboxes.smtp import magic_reply

NID = "ntf_" + "ab" * 16
EMAIL = OutgoingEmail(
    notification_id=NID,
    to="aino@example.fi",
    subject="Lasku 1001: 1 234,50 €",
    text="Hei Aino,\nlasku 1001 erääntyy 1.12.2026.",
    html="<p>Hei Aino,</p><p>lasku <b>1001</b> erääntyy 1.12.2026.</p>",
)
SENDER = "Acme Billing <billing@acme.example>"


def test_a_message_is_multipart_alternative_with_the_text_part_first_and_the_html_part_second() -> None:
    message = build_message(EMAIL, SENDER)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content().strip() == EMAIL.text
    assert parts[1].get_content().strip() == EMAIL.html


def test_the_message_id_comes_from_the_notification_id_and_the_from_domain() -> None:
    assert build_message(EMAIL, SENDER)["Message-ID"] == f"<{NID}@acme.example>"
    # The same notification always gets the same id: receivers de-duplicate a resend on it.
    assert build_message(EMAIL, SENDER)["Message-ID"] == build_message(EMAIL, SENDER)["Message-ID"]
    assert message_id(NID, "billing@Acme.Example") == f"<{NID}@acme.example>"


def test_a_message_id_that_would_not_fit_the_store_falls_back_to_the_herald_domain() -> None:
    long_sender = "billing@" + "very-long-subdomain." * 3 + "example.com"
    assert message_id(NID, long_sender) == f"<{NID}@herald>"


def test_the_headers_name_sender_recipient_subject_date_and_the_notification() -> None:
    when = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    message = build_message(EMAIL, SENDER, when=when)
    assert message["From"] == SENDER
    assert message["To"] == "aino@example.fi"
    assert message["Subject"] == "Lasku 1001: 1 234,50 €"
    assert parsedate_to_datetime(message["Date"]) == when
    assert message["X-Herald-Notification-Id"] == NID
    # Non-ASCII subjects go out RFC 2047-encoded, and the whole message is ASCII on the wire.
    assert message.as_bytes().isascii()


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (smtplib.SMTPRecipientsRefused({"aino@example.fi": (550, b"5.1.1 no such user")}), 550),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 sender not allowed", "billing@acme.example"), 553),
        (smtplib.SMTPDataError(554, b"5.6.0 message refused"), 554),
    ],
)
def test_a_5xx_to_the_sender_a_recipient_or_the_data_is_permanent_with_its_code(
    exc: smtplib.SMTPException, code: int
) -> None:
    error = classify_smtp_error(exc)
    assert isinstance(error, PermanentProviderError)
    assert error.code == code
    assert is_permanent(error)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (smtplib.SMTPRecipientsRefused({"aino@example.fi": (451, b"4.3.0 try later")}), 451),
        (smtplib.SMTPSenderRefused(421, b"4.7.0 too busy", "billing@acme.example"), 421),
        (smtplib.SMTPDataError(452, b"4.3.1 insufficient storage"), 452),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), 535),  # our config, not the mail
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), None),
        (ConnectionRefusedError(111, "Connection refused"), None),
        (ConnectionResetError(104, "Connection reset by peer"), None),
        (TimeoutError("timed out"), None),
    ],
)
def test_4xx_dropped_connections_and_timeouts_are_transient_and_certainly_not_accepted(
    exc: BaseException, code: int | None
) -> None:
    error = classify_smtp_error(exc)
    assert isinstance(error, TransientProviderError)
    assert (error.code, error.accepted_unknown) == (code, False)
    assert not is_permanent(error)


@pytest.mark.parametrize(
    "exc", [TimeoutError("timed out"), smtplib.SMTPServerDisconnected("closed"), ConnectionResetError()]
)
def test_a_timeout_or_a_dropped_connection_after_data_may_have_been_accepted(exc: BaseException) -> None:
    error = classify_smtp_error(exc, after_data=True)
    assert isinstance(error, TransientProviderError)
    assert error.accepted_unknown


def test_an_explicit_4xx_after_data_is_a_clear_no_not_an_ambiguous_answer() -> None:
    error = classify_smtp_error(smtplib.SMTPDataError(451, b"try later"), after_data=True)
    assert isinstance(error, TransientProviderError)
    assert not error.accepted_unknown


def test_a_refusal_that_quotes_the_address_is_masked_in_the_error_text() -> None:
    exc = smtplib.SMTPRecipientsRefused({"aino@example.fi": (550, b"<aino@example.fi> unknown")})
    assert "aino@example.fi" not in str(classify_smtp_error(exc))


def test_the_fake_records_what_it_sent_and_refuses_like_a_server() -> None:
    fake = FakeEmail(sender=SENDER, refuse={"reject@example.fi": 550, "busy@example.fi": 451})
    sent = fake.send(EMAIL)
    assert sent.message_id == f"<{NID}@acme.example>"
    assert [m["To"] for m in fake.sent] == ["aino@example.fi"]
    with pytest.raises(PermanentProviderError) as refused:
        fake.send(OutgoingEmail(NID, "reject@example.fi", "s", "t", "<p>h</p>"))
    assert refused.value.code == 550
    with pytest.raises(TransientProviderError):
        fake.send(OutgoingEmail(NID, "busy@example.fi", "s", "t", "<p>h</p>"))
    assert len(fake.sent) == 1


def test_the_sandbox_magic_addresses() -> None:
    assert magic_reply("reject@example.fi", seen_before=False).startswith("550")  # type: ignore[union-attr]
    assert magic_reply("busy@example.fi", seen_before=True).startswith("451")  # type: ignore[union-attr]
    assert magic_reply("flaky@example.fi", seen_before=False).startswith("451")  # type: ignore[union-attr]
    assert magic_reply("flaky@example.fi", seen_before=True) is None
    assert magic_reply("aino@example.fi", seen_before=False) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Invoice 1001\r\nBcc: victim@example.com"),
        ("subject", "Invoice 1001\nBcc: victim@example.com"),
        ("subject", "Invoice 1001\rBcc: victim@example.com"),
        ("to", "aino@example.fi\r\nBcc: victim@example.com"),
    ],
)
def test_a_line_break_in_a_header_value_is_a_permanent_refusal_and_never_a_header(
    field: str, value: str
) -> None:
    email = OutgoingEmail(**{**EMAIL.__dict__, field: value})
    with pytest.raises(UnsendableEmail, match=f"^{field}: .*line break") as refused:
        build_message(email, SENDER)
    assert isinstance(refused.value, PermanentProviderError)
    assert refused.value.code is None
    assert is_permanent(refused.value)
    fake = FakeEmail(sender=SENDER)
    with pytest.raises(UnsendableEmail):
        fake.send(email)
    assert fake.sent == []


def test_list_unsubscribe_goes_as_given_never_folded_into_encoded_words() -> None:
    from email import message_from_bytes, policy

    from infra.adapters.email import _wire

    url = "https://billing.example/preferences/acme/k1." + "A" * 200 + ".sig/unsubscribe?kind=invoice"
    value = f"<{url}>, <mailto:billing@acme.example?subject=unsubscribe>"
    headers = (("List-Unsubscribe", value), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    email = OutgoingEmail("ntf_" + "0" * 32, "aino@example.fi", "Lasku — marraskuu", "t", "<p>h</p>", headers)
    raw = _wire(build_message(email, "billing@acme.example"))
    assert f"\r\nList-Unsubscribe: {value}\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert message_from_bytes(raw, policy=policy.default)["List-Unsubscribe"] == value


def test_an_extra_header_with_a_line_break_is_refused_before_any_connection() -> None:
    bad = (("List-Unsubscribe", "<https://x.example/u>\r\nBcc: eve@example.com"),)
    with pytest.raises(UnsendableEmail, match="line break"):
        build_message(OutgoingEmail("ntf_" + "0" * 32, "a@example.fi", "S", "t", "<p/>", bad), "b@x.fi")

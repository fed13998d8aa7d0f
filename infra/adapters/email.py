"""Sending email: the port, the SMTP adapter and an in-memory fake.

SMTP replies are sorted here, and only here, into permanent refusals (5xx to
the sender, a recipient or the data) and transient failures (4xx, a dropped or
refused connection, a timeout; see ``infra.errors``). A message that cannot be
built at all (a line break in a header value) is refused permanently before any
connection is made: it would be refused the same way on every try, and a header
value is never allowed to start another header.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from infra.errors import PermanentProviderError, TransientProviderError
from infra.masking import mask_text

#: Header that names the notification, for operators reading a mailbox or a bounce.
NOTIFICATION_HEADER = "X-Herald-Notification-Id"
#: Longest provider id the store keeps (``notifications.provider_id``).
MAX_MESSAGE_ID = 64


#: What no header value may hold: line breaks (CR, LF) and the other control characters.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class UnsendableEmail(PermanentProviderError):
    """The message cannot be built: a header value holds a line break or a control character.

    Permanent, with no SMTP code (no server was asked); the email stage records it ``failed``.
    """

    reason = "unsendable_email"


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email notification."""

    notification_id: str
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class SentEmail:
    """The SMTP server accepted the message (250 after DATA)."""

    message_id: str


class EmailGateway(Protocol):
    """Anything that can send an email."""

    def send(self, email: OutgoingEmail) -> SentEmail:
        """Send one email; raises ``PermanentProviderError`` or ``TransientProviderError``."""
        ...


def message_id(notification_id: str, sender: str) -> str:
    """``<ntf_…@example.com>``: the same notification always gets the same Message-ID.

    Receivers de-duplicate on it, which is what makes a resend after an
    ambiguous attempt safe. The domain is the From address's; where that would
    not fit the store's 64 characters, ``herald``.
    """
    domain = (parseaddr(sender)[1] or sender).rpartition("@")[2].strip().lower()
    candidate = f"<{notification_id}@{domain}>" if domain else ""
    return candidate if candidate and len(candidate) <= MAX_MESSAGE_ID else f"<{notification_id}@herald>"


def build_message(email: OutgoingEmail, sender: str, *, when: datetime | None = None) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by clients that show it."""
    message = EmailMessage()
    message["Message-ID"] = message_id(_header_value("notification_id", email.notification_id), sender)
    message["Date"] = format_datetime(when or datetime.now(UTC))
    _set_header(message, "From", "sender", sender)
    _set_header(message, "To", "to", email.to)
    _set_header(message, "Subject", "subject", email.subject)
    _set_header(message, NOTIFICATION_HEADER, "notification_id", email.notification_id)
    # Quoted-printable keeps the message 7-bit, so it passes servers that do not offer 8BITMIME.
    message.set_content(email.text, cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return message


def _header_value(field: str, value: str) -> str:
    found = _CONTROL.search(value)
    if found is not None:
        what = (
            "a line break (CR/LF)"
            if found.group() in "\r\n"
            else f"a control character (U+{ord(found.group()):04X})"
        )
        raise UnsendableEmail(f"{field}: holds {what}, which an email header cannot carry; not sent")
    return value


def _set_header(message: EmailMessage, header: str, field: str, value: str) -> None:
    try:
        message[header] = _header_value(field, value)
    except ValueError as exc:  # the email package's own refusal, should ours have missed a case
        raise UnsendableEmail(f"{field}: {exc}; not sent") from None


def _code_of(exc: smtplib.SMTPException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return int(codes[0]) if codes else None
    if isinstance(exc, smtplib.SMTPResponseException):
        return int(exc.smtp_code)
    return None


def classify_smtp_error(
    exc: BaseException, *, after_data: bool = False
) -> PermanentProviderError | TransientProviderError:
    """Map an smtplib or socket error to herald's permanent / transient split.

    Only a 5xx refusal of the sender, a recipient or the message is final;
    a 5xx to HELO or AUTH is our configuration, not the message, so it is
    retried like a 4xx until someone fixes it. ``after_data`` marks failures
    after the message went out: the server may have accepted it.
    """
    if isinstance(exc, smtplib.SMTPException):
        code = _code_of(exc)
        final = isinstance(
            exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused | smtplib.SMTPDataError
        )
        # Replies often quote the recipient; errors end up in logs, so it is masked here.
        text = mask_text(f"smtp refused the message: {exc}")
        if final and code is not None and 500 <= code < 600:
            return PermanentProviderError(text, code=code)
        ambiguous = after_data and isinstance(exc, smtplib.SMTPServerDisconnected)
        return TransientProviderError(text, code=code, accepted_unknown=ambiguous)
    if isinstance(exc, TimeoutError):
        return TransientProviderError(
            f"smtp server did not answer in time{'; it may have accepted the message' if after_data else ''}",
            accepted_unknown=after_data,
        )
    # Connection refused or reset, DNS failure, TLS failure: nothing was accepted unless DATA went out.
    return TransientProviderError(
        mask_text(f"could not talk to the smtp server: {exc}"), accepted_unknown=after_data
    )


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect; the password is a plain string only inside the adapter."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = 10.0


class SmtpEmail:
    """Email through the standard library's ``smtplib``, one connection per message."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    def send(self, email: OutgoingEmail) -> SentEmail:
        config = self._config
        message = build_message(email, config.sender)
        after_data = False
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
                if config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if config.username:
                    smtp.login(config.username, config.password or "")
                # The envelope by hand, so a failure is known to be before or after DATA.
                smtp.ehlo_or_helo_if_needed()
                envelope_from = parseaddr(config.sender)[1] or config.sender
                code, reply = smtp.mail(envelope_from)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
                code, reply = smtp.rcpt(email.to)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({email.to: (code, reply)})
                after_data = True
                # smtplib sends bytes as given: lines must already end in CRLF.
                wire = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
                code, reply = smtp.data(wire)  # raises only when DATA itself is refused
                if code != 250:  # the answer to the message: a clear no, nothing was accepted
                    raise smtplib.SMTPDataError(code, reply)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()  # accepted already; a rude goodbye changes nothing
        except (smtplib.SMTPException, OSError) as exc:
            raise classify_smtp_error(exc, after_data=after_data) from None
        return SentEmail(message_id=str(message["Message-ID"]))

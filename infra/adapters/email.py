"""Sending email: the port and the SMTP adapter (its in-memory fake is ``tests.fakes.FakeEmail``).

SMTP replies are sorted here, and only here, into permanent refusals (5xx to
the sender, a recipient or the data) and transient failures (4xx, a dropped or
refused connection, a timeout; see ``infra.errors``). A message that cannot be
built at all (a line break in a header value) is refused permanently before any
connection is made: it would be refused the same way on every try, and a header
value is never allowed to start another header.
"""

from __future__ import annotations

import contextlib
import email.policy
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from infra.adapters.batch import Attempt, SendPool, once
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
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


class RecipientRefused(PermanentProviderError):
    """The server refused the recipient for good (5xx to RCPT TO): a hard bounce. The email stage
    suppresses the address for email (``infra.store.suppression``)."""

    reason = "recipient_refused"


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email notification."""

    notification_id: str
    to: str
    subject: str
    text: str
    html: str
    #: Further headers (``List-Unsubscribe``...), each checked like every other header value.
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SentEmail:
    """The SMTP server accepted the message (250 after DATA)."""

    message_id: str


class EmailGateway(Protocol):
    """Anything that can send an email."""

    def send(self, email: OutgoingEmail) -> SentEmail:
        """Send one email; raises ``PermanentProviderError`` or ``TransientProviderError``."""
        ...

    def send_many(
        self, emails: Sequence[OutgoingEmail], /, *, attempt: Attempt[SentEmail] = once
    ) -> list[SentEmail | ProviderError]:
        """Send a batch, concurrently: one result per email, in order, either the ``SentEmail`` or
        the ``ProviderError`` that email failed with (never raised for the batch).

        Each email goes through ``attempt(index, call)``, where ``call()`` is one try of it: the
        hook is where a stage retries in-call, logs retried tries and notes when the accepted try
        began (``infra.adapters.batch``). The default tries once.
        """
        ...

    def close(self) -> None:
        """Release the connections and threads (once, at shut-down); idempotent."""
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
    for name, value in email.headers:
        # As given, never folded into RFC 2047 encoded words: a List-Unsubscribe URL is one long
        # token, and receivers read the header as URLs in angle brackets (see ``_wire``).
        message.set_raw(_header_value(name, name), _header_value(name, value))
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
            if isinstance(exc, smtplib.SMTPRecipientsRefused):
                return RecipientRefused(text, code=code)
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


class _Connection:
    """One open SMTP connection, greeted (and logged in): for one message, or kept for many."""

    def __init__(self, config: SmtpConfig) -> None:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        try:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, config.password or "")
            smtp.ehlo_or_helo_if_needed()
        except BaseException:
            smtp.close()
            raise
        self.smtp = smtp
        self.envelope_from = parseaddr(config.sender)[1] or config.sender
        #: When it was last used (``time.monotonic()``), to recycle a connection idle too long.
        self.used = time.monotonic()
        #: A transaction was left open by a refusal: RSET before the next one.
        self.needs_reset = False
        #: The current transaction's DATA went out: a failure now may follow an accept.
        self.after_data = False

    def transact(self, to: str, wire: bytes) -> None:
        """One mail transaction: the envelope by hand, so a failure is known to be before or after
        DATA (``after_data``); raises what ``smtplib`` raises, or its refusals as exceptions."""
        smtp = self.smtp
        self.after_data = False
        self.used = time.monotonic()
        if self.needs_reset:
            code, reply = smtp.rset()
            if code != 250:  # a server that will not reset will not take the next message either
                raise smtplib.SMTPServerDisconnected(f"RSET answered {code} {reply!r}")
        # Until the message's 250, a failure leaves the transaction open: RSET before the next.
        self.needs_reset = True
        code, reply = smtp.mail(self.envelope_from)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self.envelope_from)
        code, reply = smtp.rcpt(to)
        if code not in (250, 251):
            raise smtplib.SMTPRecipientsRefused({to: (code, reply)})
        self.after_data = True
        code, reply = smtp.data(wire)  # raises only when DATA itself is refused
        if code != 250:  # the answer to the message: a clear no, nothing was accepted
            raise smtplib.SMTPDataError(code, reply)
        self.needs_reset = False  # the 250 ended the transaction
        self.used = time.monotonic()

    def close(self) -> None:
        """QUIT and close; a rude goodbye changes nothing."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.smtp.quit()
        self.smtp.close()


def _still_usable(exc: BaseException) -> bool:
    """Whether a connection may carry the next message after this failure: the server answered a
    command with a clear refusal (and is not closing, as a 421 says)."""
    refusal = smtplib.SMTPSenderRefused | smtplib.SMTPRecipientsRefused | smtplib.SMTPDataError
    return isinstance(exc, refusal) and _code_of(exc) != 421


def _gone_away(exc: BaseException) -> bool:
    """Whether a kept connection had been closed by the server (idle, or too many messages) before
    this message: worth one more try on a fresh connection. A timeout is not (the server may be
    slow, not gone), so a message never takes more than one timeout longer than with a fresh one."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return not isinstance(exc.__context__, TimeoutError)
    if isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
        return _code_of(exc) == 421
    return isinstance(exc, ConnectionError)


class SmtpEmail:
    """Email through the standard library's ``smtplib``.

    ``send`` opens a connection per message. ``send_many`` sends a batch on the adapter's pool of
    ``concurrency`` threads (``infra.adapters.batch``), each keeping one connection open across
    messages: RSET after a refused transaction, a fresh connection when the server closed the kept
    one before a message (the message is then tried once more on it, nothing having been sent) or
    when it sat idle longer than ``keepalive_idle`` seconds. A connection that failed in any other
    way is closed, never reused. An ambiguous failure after DATA stays ambiguous and is never
    retried here. Made once per process by the composition root, ``close()``d by it at shut-down.
    """

    def __init__(self, config: SmtpConfig, *, concurrency: int = 4, keepalive_idle: float = 30.0) -> None:
        self._config = config
        self._keepalive_idle = keepalive_idle
        self._local = threading.local()
        self._kept: set[_Connection] = set()
        self._kept_lock = threading.Lock()
        self._pool = SendPool(concurrency, "herald-smtp-send")

    @property
    def concurrency(self) -> int:
        """The most messages ``send_many`` has on the wire at once."""
        return self._pool.size

    def send(self, email: OutgoingEmail) -> SentEmail:
        message = build_message(email, self._config.sender)
        wire = _wire(message)
        connection: _Connection | None = None
        try:
            connection = _Connection(self._config)
            connection.transact(email.to, wire)
        except (smtplib.SMTPException, OSError) as exc:
            after_data = connection is not None and connection.after_data
            raise classify_smtp_error(exc, after_data=after_data) from None
        finally:
            if connection is not None:
                connection.close()  # accepted already, or failed: either way this one is done
        return SentEmail(message_id=str(message["Message-ID"]))

    def send_many(
        self, emails: Sequence[OutgoingEmail], /, *, attempt: Attempt[SentEmail] = once
    ) -> list[SentEmail | ProviderError]:
        """See ``EmailGateway.send_many``: on the pool's threads, each with its kept connection."""
        return self._pool.run(emails, self._send_kept, attempt, "email over smtp")

    def _send_kept(self, email: OutgoingEmail) -> SentEmail:
        """One message on this thread's kept connection (see the class docstring)."""
        message = build_message(email, self._config.sender)  # unsendable: refused before any I/O
        wire = _wire(message)
        connection = self._kept_connection()
        try:
            if connection is not None:
                try:
                    connection.transact(email.to, wire)
                    return SentEmail(message_id=str(message["Message-ID"]))
                except (smtplib.SMTPException, OSError) as exc:
                    if connection.after_data or not _gone_away(exc):
                        raise
                # The server had closed the kept connection before this message: nothing of it was
                # sent, so it gets one try on a fresh connection.
                self._drop(connection)
                connection = None
            connection = self._connect()
            connection.transact(email.to, wire)
        except (smtplib.SMTPException, OSError) as exc:
            after_data = connection is not None and connection.after_data
            if connection is not None and not _still_usable(exc):
                self._drop(connection)
            raise classify_smtp_error(exc, after_data=after_data) from None
        return SentEmail(message_id=str(message["Message-ID"]))

    def _kept_connection(self) -> _Connection | None:
        """This thread's kept connection, unless it sat idle too long (then it is closed)."""
        connection: _Connection | None = getattr(self._local, "connection", None)
        if connection is not None and time.monotonic() - connection.used > self._keepalive_idle:
            self._drop(connection)
            connection = None
        return connection

    def _connect(self) -> _Connection:
        with self._kept_lock:
            if self._pool.closed:  # shutting down: certainly not sent, so a clean transient failure
                raise TransientProviderError("the smtp adapter is closed; not sent")
        connection = _Connection(self._config)
        with self._kept_lock:
            self._kept.add(connection)
        self._local.connection = connection
        return connection

    def _drop(self, connection: _Connection) -> None:
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._kept_lock:
            self._kept.discard(connection)
        connection.close()

    def close(self) -> None:
        """End the pool (after the sends under way), then QUIT every kept connection; idempotent."""
        self._pool.close()
        with self._kept_lock:
            kept, self._kept = self._kept, set()
        for connection in kept:
            connection.close()


#: ``EmailMessage``'s own policy, with CRLF, and raw headers not refolded.
_WIRE_POLICY = email.policy.default.clone(linesep="\r\n", refold_source="none")


def _wire(message: EmailMessage) -> bytes:
    # smtplib sends bytes as given: lines must already end in CRLF. Headers set raw (the extra
    # ones of ``OutgoingEmail.headers``) are sent as set: refolding a long URL would encode it.
    return message.as_bytes(policy=_WIRE_POLICY)

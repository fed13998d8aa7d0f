"""Sending SMS: the port and the Twilio adapter (its in-memory fake is ``tests.fakes.FakeSms``);
the Vonage adapter is ``infra.adapters.vonage_sms``.

Twilio's and Vonage's answers are sorted here, and only here, into permanent refusals
and transient failures (see ``infra.errors``); a failure to reach Twilio at all is sorted by the
transport, which knows how far the request got (``infra.adapters.twilio_http``).

Connections: the official client talks through ``infra.adapters.twilio_http``, a lean transport
(twilio's ``HttpClient`` extension point) over ``http.client``, keeping up to ``concurrency``
connections alive, so a message costs no new TCP (or TLS) connection. ``send_many`` sends a batch
concurrently on the adapter's pool of ``concurrency`` threads (``infra.adapters.batch``), each
taking a kept-alive connection for its call; ``close()`` ends the pool and closes every connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from infra.adapters.batch import Attempt, SendPool, once
from infra.adapters.twilio_http import LeanHttpClient, NoAnswer
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError

#: Twilio error codes that retrying cannot fix.
PERMANENT_CODES: frozenset[int] = frozenset(
    {21211, 21408, 21610, 21612, 21614, 21635, 30004, 30005, 30006, 30007}
)
#: Twilio error codes worth retrying (queue overflow, rate, unknown carrier state).
TRANSIENT_CODES: frozenset[int] = frozenset({20429, 30001, 30008})
#: Error code of a recipient who replied STOP.
OPTED_OUT = 21610


@dataclass(frozen=True)
class SentSms:
    """The provider accepted the message."""

    provider_id: str
    status: str


@dataclass(frozen=True)
class OutgoingSms:
    """One SMS of a batch (``SmsGateway.send_many``): what ``send`` takes.

    ``reference`` is the notification's id, for providers that match receipts by a reference the
    message carries (Vonage's ``client-ref``) rather than by the callback URL (Twilio's)."""

    to: str
    sender: str
    body: str
    status_callback: str | None = None
    reference: str | None = None


class SmsGateway(Protocol):
    """Anything that can send an SMS and find one it sent."""

    def send(self, *, to: str, sender: str, body: str, status_callback: str | None) -> SentSms:
        """Send one SMS; raises ``PermanentProviderError`` or ``TransientProviderError``."""
        ...

    def send_many(
        self, messages: Sequence[OutgoingSms], /, *, attempt: Attempt[SentSms] = once
    ) -> list[SentSms | ProviderError]:
        """Send a batch, concurrently: one result per message, in order, either the ``SentSms`` or
        the ``ProviderError`` that message failed with (never raised for the batch).

        Each message goes through ``attempt(index, call)``, where ``call()`` is one ``send`` of
        it: the hook is where a stage retries in-call, logs retried tries and notes when the
        accepted try began (``infra.adapters.batch``). The default tries once.
        """
        ...

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        """The provider id of a message with this body sent to ``to`` since ``since``, if any."""
        ...

    def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
        """The provider's current status of one message and its error code (Twilio's words:
        ``queued``, ``sent``, ``delivered``, ``undelivered``, ``failed``, …); raises
        ``PermanentProviderError`` (e.g. an unknown id) or ``TransientProviderError``."""
        ...

    def close(self) -> None:
        """Release the connections and threads (once, at shut-down); idempotent."""
        ...


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify_twilio_error(
    exc: TwilioRestException | TwilioServiceException, retry_after: float | None = None
) -> PermanentProviderError | TransientProviderError:
    """Map a Twilio REST error to herald's permanent / transient split.

    Transient: HTTP 429 and 5xx, and the codes in ``TRANSIENT_CODES``. Every other
    refusal (4xx, including the codes in ``PERMANENT_CODES``) is permanent.
    """
    code = exc.code
    status = exc.status
    message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
    text = f"twilio refused the message: HTTP {status}, code {code}: {message}"
    if status == 429 or (status is not None and status >= 500) or code in TRANSIENT_CODES:
        return TransientProviderError(text, code=code, status=status, retry_after=retry_after)
    return PermanentProviderError(text, code=code, status=status)


#: Vonage SMS API message statuses (``messages[0].status``, a string of digits; 0 is accepted)
#: worth retrying: throttled, internal error, partner quota (out of credit: topped up, it goes
#: through), too many binds. Each is an answer: the message was not sent.
VONAGE_TRANSIENT_STATUSES: frozenset[int] = frozenset({1, 5, 9, 10})
#: The ones retrying cannot fix, for the record (any status not transient is permanent): missing or
#: invalid parameters (an invalid number), invalid credentials, invalid message, number barred,
#: account barred, account not enabled for HTTP, message too long, invalid signature, invalid
#: sender, invalid network code, invalid callback URL, non-whitelisted destination, signature and
#: secret disallowed, number de-activated.
VONAGE_PERMANENT_STATUSES: frozenset[int] = frozenset({2, 3, 4, 6, 7, 8, 11, 12, 14, 15, 22, 23, 29, 32, 33})


def classify_vonage_error(
    *,
    status: int | None,
    http_status: int | None,
    message: str,
    retry_after: float | None = None,
) -> PermanentProviderError | TransientProviderError:
    """Map a Vonage SMS API refusal to herald's permanent / transient split.

    ``status`` is the message status Vonage answered in a 200 (``None`` when the HTTP answer was
    itself an error); ``http_status`` the HTTP status. Transient: HTTP 429 and 5xx, and the
    statuses in ``VONAGE_TRANSIENT_STATUSES``. Every other refusal is permanent. Never ambiguous:
    an answer came, so Vonage did not take the message (a request with no answer is sorted by the
    adapter, which knows how far it got).
    """
    code = f", status {status}" if status is not None else ""
    text = f"vonage refused the message: HTTP {http_status}{code}: {message}"
    if http_status is not None and (http_status == 429 or http_status >= 500):
        return TransientProviderError(text, code=status, status=http_status, retry_after=retry_after)
    if status is not None and status in VONAGE_TRANSIENT_STATUSES:
        return TransientProviderError(text, code=status, status=http_status, retry_after=retry_after)
    return PermanentProviderError(text, code=status, status=http_status)


class TwilioSms:
    """SMS through the official ``twilio`` client, at a configurable base URL.

    ``concurrency`` bounds the messages of ``send_many`` on the wire at once (the pool's threads,
    made on first use); ``keepalive_idle`` is the longest a connection is kept idle for reuse.
    Made once per process by the composition root, and ``close()``d by it at shut-down.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str,
        timeout: float,
        *,
        concurrency: int = 16,
        keepalive_idle: float = 30.0,
    ) -> None:
        # Every thread of the pool keeps a connection alive, and so may the stage's own threads
        # (reconciliation, status look-ups) for a while.
        self._http = LeanHttpClient(
            base_url=base_url, timeout=timeout, maxsize=concurrency, keepalive_idle=keepalive_idle
        )
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # Every REST call of the Messages resource is built from this base (real Twilio or a sandbox).
        self._client.api.base_url = base_url
        # The client builds its resources lazily: build them here, not in several threads at once.
        _ = self._client.messages
        self._pool = SendPool(concurrency, "herald-sms-send")

    @property
    def concurrency(self) -> int:
        """The most messages ``send_many`` has on the wire at once."""
        return self._pool.size

    def send(self, *, to: str, sender: str, body: str, status_callback: str | None) -> SentSms:
        kwargs: dict[str, str] = {"to": to, "from_": sender, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc, self._retry_after()) from None
        return SentSms(provider_id=str(message.sid), status=str(message.status))

    def send_many(
        self, messages: Sequence[OutgoingSms], /, *, attempt: Attempt[SentSms] = once
    ) -> list[SentSms | ProviderError]:
        """See ``SmsGateway.send_many``: on the pool's threads, over the kept-alive connections."""
        return self._pool.run(messages, self._send_one, attempt, "sms to twilio")

    def _send_one(self, sms: OutgoingSms) -> SentSms:
        return self.send(to=sms.to, sender=sms.sender, body=sms.body, status_callback=sms.status_callback)

    def _retry_after(self) -> float | None:
        """``Retry-After`` of this thread's last response, in seconds (twilio's exceptions carry
        the body, not the headers)."""
        response = self._http.last_response()
        headers = response.headers if response is not None else None
        return parse_retry_after(headers.get("Retry-After")) if headers else None

    def close(self) -> None:
        """End the pool (after the sends under way), then close every connection; idempotent."""
        self._pool.close()
        self._http.close()

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        # The client formats dates ignoring tzinfo, so hand it UTC; it filters by day,
        # so the exact creation time is compared here.
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        try:
            candidates = self._client.messages.list(
                to=to, date_sent_after=since - timedelta(days=1), page_size=100, limit=500
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc, self._retry_after()) from None
        except (TwilioException, NoAnswer) as exc:
            # Paged list calls raise a bare TwilioException ("Unable to fetch page") on any HTTP error.
            raise TransientProviderError(f"could not list twilio messages: {exc}") from None
        floor = since - timedelta(minutes=2)
        for message in candidates:
            created = message.date_created
            if message.body == body and (created is None or created >= floor):
                return str(message.sid)
        return None

    def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
        try:
            message = self._client.messages(provider_id).fetch()
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc, self._retry_after()) from None
        except (TwilioException, NoAnswer) as exc:
            # A read changes nothing at Twilio: every connection failure or timeout is simply transient.
            raise TransientProviderError(f"could not fetch the twilio message: {exc}") from None
        code = message.error_code
        return str(message.status), int(code) if code is not None else None

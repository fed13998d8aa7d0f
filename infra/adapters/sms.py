"""Sending SMS: the port, the Twilio adapter and an in-memory fake.

Twilio's answers are sorted here, and only here, into permanent refusals
and transient failures (see ``infra.errors``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from infra.errors import PermanentProviderError, TransientProviderError

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


class SmsGateway(Protocol):
    """Anything that can send an SMS and find one it sent."""

    def send(self, *, to: str, sender: str, body: str, status_callback: str | None) -> SentSms:
        """Send one SMS; raises ``PermanentProviderError`` or ``TransientProviderError``."""
        ...

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        """The provider id of a message with this body sent to ``to`` since ``since``, if any."""
        ...

    def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
        """The provider's current status of one message and its error code (Twilio's words:
        ``queued``, ``sent``, ``delivered``, ``undelivered``, ``failed``, …); raises
        ``PermanentProviderError`` (e.g. an unknown id) or ``TransientProviderError``."""
        ...


def _never_sent(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether a connection error happened before the request reached the provider."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError | NameResolutionError)


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


class _HeaderKeepingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client, remembering each thread's last response so ``Retry-After`` can be read
    (the client's exceptions carry the body, not the headers)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self._local.response = None
        response = super().request(*args, **kwargs)
        self._local.response = response
        return response

    def last_retry_after(self) -> float | None:
        """``Retry-After`` of this thread's last response, in seconds."""
        response = getattr(self._local, "response", None)
        headers = getattr(response, "headers", None) or {}
        return parse_retry_after(headers.get("Retry-After"))


class TwilioSms:
    """SMS through the official ``twilio`` client, at a configurable base URL."""

    def __init__(self, account_sid: str, auth_token: str, base_url: str, timeout: float) -> None:
        self._http = _HeaderKeepingHttpClient(timeout=timeout)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # Every REST call of the Messages resource is built from this base (real Twilio or a sandbox).
        self._client.api.base_url = base_url

    def send(self, *, to: str, sender: str, body: str, status_callback: str | None) -> SentSms:
        kwargs: dict[str, str] = {"to": to, "from_": sender, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc, self._http.last_retry_after()) from None
        except requests.exceptions.ConnectTimeout as exc:
            raise TransientProviderError(f"twilio did not answer the connection: {exc}") from None
        except requests.exceptions.ConnectionError as exc:
            # Refused before the request went out: certainly not sent. Dropped after it went out
            # (no answer): Twilio may have accepted it, so it is ambiguous, like a read timeout.
            raise TransientProviderError(
                f"could not reach twilio: {exc}", accepted_unknown=not _never_sent(exc)
            ) from None
        except requests.exceptions.Timeout as exc:
            raise TransientProviderError(
                f"twilio did not answer in time; it may have accepted the message: {exc}",
                accepted_unknown=True,
            ) from None
        return SentSms(provider_id=str(message.sid), status=str(message.status))

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        # The client formats dates ignoring tzinfo, so hand it UTC; it filters by day,
        # so the exact creation time is compared here.
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        try:
            candidates = self._client.messages.list(
                to=to, date_sent_after=since - timedelta(days=1), page_size=100, limit=500
            )
        except (TwilioRestException, TwilioServiceException) as exc:
            raise classify_twilio_error(exc, self._http.last_retry_after()) from None
        except (TwilioException, requests.exceptions.RequestException) as exc:
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
            raise classify_twilio_error(exc, self._http.last_retry_after()) from None
        except (TwilioException, requests.exceptions.RequestException) as exc:
            # A read changes nothing at Twilio: every connection failure or timeout is simply transient.
            raise TransientProviderError(f"could not fetch the twilio message: {exc}") from None
        code = message.error_code
        return str(message.status), int(code) if code is not None else None

"""SMS through Vonage, with the official ``vonage`` SDK, behind the same port as Twilio
(``infra.adapters.sms.SmsGateway``).

What the SDK does that herald must not let it (read from ``vonage`` 4.9.1, ``vonage-sms`` 1.2.0,
``vonage-http-client`` 1.5.2):

- With a ``signature_secret`` in its ``Auth`` the SDK signs each send over every field of the
  message, ``None`` ones included, but sends only those that are set: Vonage refuses every such
  send (status 14, invalid signature). Sends here use key + secret only; the signature secret is
  for checking receipts (``producers.api.vonage_receipts``), with an ``Auth`` of its own.
- ``HttpClient.make_request`` re-sends a request up to ``pool_maxsize`` times (10 by default)
  when the connection drops before an answer (``RemoteDisconnected``): the first may have been
  taken, so a re-send can send the SMS twice. Each client here has ``pool_maxsize=1`` (its loop
  then gives up at the first drop) and ``max_retries=0`` (urllib3's own retries): one request
  per call; herald's retry policy decides the rest, and a drop after the request went out is
  *ambiguous* (``accepted_unknown``).
- The client keeps its headers and its last response on itself, and its ``requests`` session is
  not made for threads: every sending thread gets a client of its own (kept alive, one
  connection each), so a status read from ``last_response`` is this thread's.
- Hosts are bare (``rest.nexmo.com``): the SDK always prepends ``https://``. The sandbox speaks
  TLS; ``ca_bundle`` names the CA it is signed with (``HERALD_VONAGE_CA_BUNDLE``).

Receipts are matched by ``client-ref``: every message carries its notification's id there.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError
from requests import Session
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, RequestException, SSLError
from urllib3.exceptions import NameResolutionError, NewConnectionError
from vonage import Vonage
from vonage_http_client import Auth, HttpClientOptions
from vonage_http_client.errors import HttpRequestError
from vonage_sms import SmsMessage
from vonage_sms.errors import PartialFailureError, SmsError
from vonage_utils.errors import VonageError

from infra.adapters.batch import Attempt, SendPool, once
from infra.adapters.sms import OutgoingSms, SentSms, classify_vonage_error, parse_retry_after
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
from infra.masking import mask_text
from schemas.messages import is_notification_id

#: Vonage's receipt statuses in the port's (Twilio's) words, for ``fetch_status`` and receipts.
VONAGE_STATUS_WORDS: dict[str, str] = {
    "delivered": "delivered",
    "expired": "undelivered",
    "failed": "failed",
    "rejected": "failed",
    "accepted": "sent",
    "buffered": "sent",
    "submitted": "sent",
    "unknown": "sent",
}
# The GSM 03.38 alphabet (as ``workers.rules.segments``, which infra may not import): a body
# outside it goes as ``unicode``, else Vonage garbles it.
_GSM = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)
#: Pages of the Reports API read for one look-up (1,000 records each).
_MAX_REPORT_PAGES = 10


def _number(value: str) -> str:
    """A phone number as Vonage takes it: E.164 without the ``+``; an alphanumeric sender as is."""
    return value[1:] if value.startswith("+") else value


def _not_sent(exc: RequestException) -> bool:
    """Whether a ``requests`` failure happened before the request could go out (no connection,
    no TLS session, no name): certainly not sent. Anything else may have reached Vonage."""
    if isinstance(exc, ConnectTimeout | SSLError):
        return True
    if isinstance(exc, RequestsConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return isinstance(reason, NewConnectionError | NameResolutionError)
    return False


def _parts_refused(answer: Any) -> ProviderError:
    """A long message goes as parts, each taken or refused alone. None taken: the first refusal,
    classified. Some taken: those went out, so the message can neither be resent (they would
    arrive twice) nor sent elsewhere: permanent."""
    parts = answer.get("messages") if isinstance(answer, dict) else None
    parts = [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []
    refused = [p for p in parts if str(p.get("status")) != "0"]
    if parts and len(refused) == len(parts):
        first = refused[0]
        status = str(first.get("status", ""))
        return classify_vonage_error(
            status=int(status) if status.isascii() and status.isdigit() else None,
            http_status=200,
            message=mask_text(str(first.get("error-text", ""))[:200]),
        )
    return PermanentProviderError(
        f"vonage took {len(parts) - len(refused)} of {len(parts)} parts of the message; not resent",
        status=200,
    )


def reference_of(status_callback: str | None) -> str | None:
    """The notification id that ends a status callback URL herald built
    (``…/callbacks/twilio/{notification_id}``), if it is one."""
    if not status_callback:
        return None
    last = urlsplit(status_callback).path.rstrip("/").rpartition("/")[2]
    return last if is_notification_id(last) else None


class VonageSms:
    """SMS through the official ``vonage`` SDK (see the module docstring for what it guards).

    ``receipts_url`` is where Vonage posts delivery receipts (``{HERALD_PUBLIC_URL}/callbacks/
    vonage``): asked for whenever the caller asks for status callbacks. ``concurrency`` bounds the
    messages of ``send_many`` on the wire at once. ``reports_lag`` is how long after a send
    Vonage's Reports API may not list it yet (``find_sent``). Made once per process by the
    composition root and ``close()``d by it.
    """

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        rest_host: str,
        api_host: str,
        timeout: int,
        receipts_url: str | None = None,
        ca_bundle: str | None = None,
        concurrency: int = 16,
        reports_lag: float = 300.0,
    ) -> None:
        self._auth = Auth(api_key=api_key, api_secret=api_secret)
        self._api_key = api_key
        self._options = HttpClientOptions(
            rest_host=rest_host,
            api_host=api_host,
            timeout=timeout,
            # One connection per thread's client, and no re-send: see the module docstring.
            pool_connections=1,
            pool_maxsize=1,
            max_retries=0,
        )
        self._receipts_url = receipts_url
        self._ca_bundle = ca_bundle
        self._reports_lag = timedelta(seconds=reports_lag)
        self._local = threading.local()
        self._sessions: list[Session] = []
        self._lock = threading.Lock()
        self._closed = False
        self._pool = SendPool(concurrency, "herald-vonage-send")

    @property
    def concurrency(self) -> int:
        """The most messages ``send_many`` has on the wire at once."""
        return self._pool.size

    def client(self) -> Vonage:
        """This thread's SDK client (made on first use; each has its own kept-alive connection)."""
        client: Vonage | None = getattr(self._local, "client", None)
        if client is None:
            with self._lock:
                if self._closed:
                    raise TransientProviderError("the vonage adapter is closed; not sent")
                client = Vonage(self._auth, self._options)
                session: Session = client.http_client._session
                if self._ca_bundle:
                    # requests lets REQUESTS_CA_BUNDLE override a session's own ``verify``: a
                    # session told which CA to trust reads nothing from the environment.
                    session.verify = self._ca_bundle
                    session.trust_env = False
                self._sessions.append(session)
            self._local.client = client
        return client

    def send(
        self,
        *,
        to: str,
        sender: str,
        body: str,
        status_callback: str | None,
        reference: str | None = None,
    ) -> SentSms:
        """Send one SMS; ``reference`` (else the notification id ending ``status_callback``) goes
        as ``client-ref``. Raises ``PermanentProviderError`` or ``TransientProviderError`` (with
        ``accepted_unknown`` when the request may have reached Vonage unanswered)."""
        ref = reference or reference_of(status_callback)
        try:
            message = SmsMessage(
                to=_number(to),
                from_=_number(sender),
                text=body,
                type="text" if all(c in _GSM for c in body) else "unicode",
                client_ref=ref,
                callback=self._receipts_url if status_callback and self._receipts_url else None,
                status_report_req=True if status_callback else None,
            )
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise PermanentProviderError(f"vonage cannot take this message: invalid {fields}") from None
        client = self.client()
        try:
            answer = client.sms.send(message)
        except PartialFailureError as exc:
            raise _parts_refused(exc.response) from None
        except SmsError:
            raise self._refusal(client) from None
        except HttpRequestError as exc:
            response = exc.response
            raise classify_vonage_error(
                status=None,
                http_status=response.status_code,
                message=mask_text(response.text[:200]),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            ) from None
        except RequestException as exc:
            if _not_sent(exc):
                raise TransientProviderError(
                    f"could not reach vonage; not sent: {type(exc).__name__}"
                ) from None
            raise TransientProviderError(
                f"vonage did not answer ({type(exc).__name__}); it may have taken the message",
                accepted_unknown=True,
            ) from None
        except (VonageError, TypeError, KeyError, ValueError) as exc:
            # An answer the SDK could not read (not JSON, no messages): it may have been taken.
            raise TransientProviderError(
                f"vonage's answer could not be read ({type(exc).__name__}); it may have taken the message",
                accepted_unknown=True,
            ) from None
        first = answer.messages[0]
        return SentSms(provider_id=str(first.message_id), status="queued")

    def _refusal(self, client: Vonage) -> ProviderError:
        """The refusal in this thread's last answer (the SDK's ``SmsError`` keeps only text)."""
        response = client.http_client.last_response
        try:
            item = response.json()["messages"][0]
            status, text = int(item["status"]), str(item.get("error-text", ""))
        except (AttributeError, TypeError, KeyError, IndexError, ValueError):
            return TransientProviderError("vonage refused with an answer that could not be read")
        return classify_vonage_error(status=status, http_status=response.status_code, message=mask_text(text))

    def send_many(
        self, messages: Sequence[OutgoingSms], /, *, attempt: Attempt[SentSms] = once
    ) -> list[SentSms | ProviderError]:
        """See ``SmsGateway.send_many``: on the pool's threads, each with its own client."""
        return self._pool.run(messages, self._send_one, attempt, "sms to vonage")

    def _send_one(self, sms: OutgoingSms) -> SentSms:
        return self.send(
            to=sms.to,
            sender=sms.sender,
            body=sms.body,
            status_callback=sms.status_callback,
            reference=sms.reference,
        )

    def close(self) -> None:
        """End the pool (after the sends under way), then close every client's session; idempotent."""
        self._pool.close()
        with self._lock:
            self._closed = True
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # --- Reconciliation and statuses: the Reports API ------------------------------------------

    def find_sent(self, *, to: str, body: str, since: datetime, reference: str | None = None) -> str | None:
        """The message id of an SMS Vonage took since ``since``, to ``to`` with this body (or with
        this ``client-ref``), from Vonage's Reports API; ``None`` when it has none.

        What it can reconcile: any message Vonage accepted (it is in the account's records,
        with its ``client-ref`` and, asked for, its text). What it cannot: a message sent less
        than ``reports_lag`` ago that the records do not list yet. The Reports API fills in
        behind the SMS API, so "not listed" says nothing then: ``TransientProviderError`` (with
        the wait as ``retry_after``) instead of ``None``, so the caller asks again later and
        never resends, or fails over, on an answer that is not one.
        """
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        now = datetime.now(UTC)
        params = {
            "date_start": (since - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date_end": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "include_message": "true",
        }
        wanted_to = _number(to)
        for record in self._records(params):
            if reference is not None and record.get("client_ref") == reference:
                return str(record.get("message_id"))
            if record.get("to") == wanted_to and record.get("message_body") == body:
                return str(record.get("message_id"))
        settled = since + self._reports_lag
        if now < settled:
            wait = (settled - now).total_seconds()
            raise TransientProviderError(
                f"vonage's reports may not list a message sent at {since:%H:%M:%S} yet; "
                f"ask again in {wait:.0f} s",
                retry_after=wait,
            )
        return None

    def fetch_status(self, provider_id: str) -> tuple[str, int | None]:
        """Vonage's status of one message in the port's words (``VONAGE_STATUS_WORDS``) and its
        error code, from the Reports API; ``PermanentProviderError`` when it has no such message."""
        for record in self._records({"id": provider_id}):
            if record.get("message_id") == provider_id:
                word = VONAGE_STATUS_WORDS.get(str(record.get("status", "")).lower(), "sent")
                code = str(record.get("error_code") or "")
                return word, int(code) if code.isascii() and code.isdigit() and code != "0" else None
        raise PermanentProviderError(f"vonage has no message {provider_id[:64]!r}", status=404)

    def _records(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Outbound SMS records of the account matching ``params``, every page (up to a bound)."""
        query = {"account_id": self._api_key, "product": "SMS", "direction": "outbound", **params}
        client = self.client()
        found: list[dict[str, Any]] = []
        for _ in range(_MAX_REPORT_PAGES):
            try:
                page = client.http_client.get(
                    client.http_client.api_host,
                    "/v2/reports/records",
                    query,
                    auth_type="basic",
                    sent_data_type="query_params",
                )
            except HttpRequestError as exc:
                response = exc.response
                raise classify_vonage_error(
                    status=None,
                    http_status=response.status_code,
                    message="reports: " + mask_text(response.text[:200]),
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                ) from None
            except (RequestException, VonageError) as exc:
                # A read changes nothing at Vonage: every failure to get an answer is transient.
                raise TransientProviderError(
                    f"could not read vonage's reports: {type(exc).__name__}"
                ) from None
            records = page.get("records") if isinstance(page, dict) else None
            if not isinstance(records, list):
                raise TransientProviderError("vonage's reports answer holds no list of records")
            found.extend(r for r in records if isinstance(r, dict))
            cursor = _next_cursor(page)
            if cursor is None:
                break
            query = {**query, "cursor": cursor}
        return found


def _next_cursor(page: dict[str, Any]) -> str | None:
    """The cursor of the Reports API's next page (``_links.next.href``), if there is one."""
    links = page.get("_links")
    href = links.get("next", {}).get("href") if isinstance(links, dict) else None
    if not isinstance(href, str):
        return None
    cursor = parse_qs(urlsplit(href).query).get("cursor")
    return cursor[0] if cursor else None

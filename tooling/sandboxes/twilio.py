"""A local, Twilio-compatible Messages API (REST 2010-04-01) for demos and tests.

The official ``twilio`` client talks to it unchanged once ``client.api.base_url``
points here. It captures what is sent, answers Twilio's magic test numbers with
Twilio's errors, and posts signed status callbacks (queued → sent → delivered).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import math
import re
import threading
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from twilio.request_validator import RequestValidator

from infra.masking import mask_phone
from tooling.sandboxes.faults import FaultPlan
from tooling.sandboxes.http import DelayedPosts, HttpSandbox, SandboxHandler, SandboxServer, once_a_second
from tooling.sandboxes.running import serve_until_stopped

log = logging.getLogger("herald.sandbox.twilio")

API = "2010-04-01"
_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages(?:/([^/]+))?\.json$")
#: The account itself and its phone numbers: what ``herald integrations connect twilio`` checks.
_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+?)(/IncomingPhoneNumbers)?\.json$")
_GSM = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = frozenset("^{}\\[~]|€\f")  # escape + char: two septets each
_GSM_ALL = _GSM | _GSM_EXT
#: Twilio's magic test numbers (``To``) and the refusals they trigger.
MAGIC_NUMBERS: dict[str, tuple[int, str]] = {
    "+15005550001": (21211, "The 'To' number is not a valid phone number."),
    "+15005550002": (21612, "Twilio cannot route to this number."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for this region."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient."),
    "+15005550009": (21614, "'To' number is not a valid mobile number."),
}
_FILTERS = ("To", "From", "DateSent", "DateSent<", "DateSent>")


@dataclass
class SandboxConfig:
    """Credentials the sandbox accepts, and how fast it reports delivery."""

    account_sid: str
    auth_token: str
    callback_delay_seconds: float = 0.05
    #: Numbers the account owns (``IncomingPhoneNumbers``); Twilio's magic "From" test number.
    phone_numbers: tuple[str, ...] = ("+15005550006",)
    #: The carrier's verdict per ``To`` number after ``sent``: ``(status, error code)``, e.g.
    #: ``("undelivered", 30003)``; any other number ends ``delivered``. Read when it is reached.
    outcomes: dict[str, tuple[str, int | None]] = field(default_factory=dict)


def num_segments(body: str) -> int:
    """SMS parts Twilio would bill: GSM-7 160/153 characters, otherwise UCS-2 70/67."""
    if _GSM_ALL.issuperset(body):
        units, single, multi = len(body) + sum(body.count(c) for c in _GSM_EXT.intersection(body)), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


def _error(status: int, code: int, message: str) -> dict[str, Any]:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def _rfc2822(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC))


#: Now, as Twilio's dates have it (whole seconds).
_now_rfc2822 = once_a_second(lambda second: _rfc2822(datetime.fromtimestamp(second, UTC)))


def _parse_iso(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _date_matches(message: dict[str, Any], key: str, raw: str, bound: datetime) -> bool:
    # Not yet sent: fall back to creation so reconciliation can still find queued messages.
    when = parsedate_to_datetime(message["date_sent"] or message["date_created"])
    if key == "DateSent":
        return when.date() == bound.date()
    # Twilio's ``DateSent>=`` / ``DateSent<=`` are inclusive; a bare date compares whole days.
    have, limit = (when.date(), bound.date()) if len(raw) == 10 else (when, bound)
    return have >= limit if key == "DateSent>" else have <= limit


class _Server(SandboxServer):
    name, logger = "twilio sandbox", log
    sandbox: TwilioSandbox


class _Handler(SandboxHandler):
    server: _Server
    # Keep-alive, as Twilio's API does: a client reuses its connection instead of one per message.
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        sandbox, method = self.server.sandbox, self.command
        parts = urlsplit(self.path)
        match = _PATH.match(parts.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if parts.path == "/sandbox/faults" and method == "POST":
            # Test control, not Twilio's API: plan failures for the next Messages requests.
            sandbox.faults.configure(json.loads(raw or "{}"))
            self._send(200, sandbox.faults.state())
        elif match is None and (account := _ACCOUNT_PATH.match(parts.path)) and method == "GET":
            if self._authorized(account.group(1)):
                self._send(200, sandbox._account(account.group(2) is not None, parts.query))
            else:
                self._send(401, _error(401, 20003, "Authenticate"))
        elif match is None:
            self._send(404, _error(404, 20404, f"The requested resource {parts.path} was not found"))
        elif not self._authorized(match.group(1)):
            self._send(401, _error(401, 20003, "Authenticate"))
        elif method == "POST" and match.group(2) is None:
            fault = sandbox.faults.take()
            if fault is not None:
                sandbox.faults.note(fault.status)
                error = _error(fault.status, fault.code, fault.message)
                self._send(fault.status, error, retry_after=fault.retry_after)
            else:
                status, answer = sandbox._create(dict(parse_qsl(raw, keep_blank_values=True)))
                sandbox.faults.note(status)
                self._send(status, answer)
        elif method == "GET" and match.group(2) is None:
            self._send(*sandbox._list(parts.query))
        elif method == "GET":
            self._send(*sandbox._fetch(match.group(2), parts.path))
        else:
            self._send(405, _error(405, 20004, "Method not allowed"))

    do_GET = do_POST = do_DELETE = _dispatch

    def _authorized(self, path_sid: str) -> bool:
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:  # binascii.Error and UnicodeDecodeError both derive from it
            return False
        config = self.server.sandbox.config
        expected = (config.account_sid, config.auth_token)
        return scheme.lower() == "basic" and (user, password) == expected and path_sid == config.account_sid

    def _send(self, status: int, payload: dict[str, Any], retry_after: float | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
        self.end_headers_and_write(body)


class TwilioSandbox(HttpSandbox):
    """The sandbox server; ``start()`` serves in a daemon thread, ``stop()`` ends it."""

    def __init__(self, config: SandboxConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config
        self._host, self._port = host, port
        self._validator = RequestValidator(config.auth_token)
        self._lock = threading.Lock()
        #: Planned failures of the Messages create call (tests and the fault suite).
        self.faults = FaultPlan()
        self._messages: list[dict[str, Any]] = []
        self._by_sid: dict[str, dict[str, Any]] = {}
        self._callbacks = DelayedPosts(self._advance, "status callback", log)
        self._server: _Server | None = None

    def start(self) -> None:
        """Bind and serve in daemon threads; returns once the port accepts connections."""
        server = _Server((self._host, self._port), _Handler)
        server.sandbox = self
        self._callbacks = DelayedPosts(self._advance, "status callback", log)
        self._serve(server, self._callbacks.run)

    def stop(self) -> None:
        """Stop serving and drop callbacks not yet posted."""
        self._callbacks.close()
        self._stop_serving()

    def messages(self) -> list[dict[str, Any]]:
        """A copy of every captured message, oldest first, in Twilio's JSON shape."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        service = form.get("MessagingServiceSid") or None
        if not to:
            return 400, _error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return 400, _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return 400, _error(400, 21602, "Message body is required.")
        if to in MAGIC_NUMBERS:
            code, text = MAGIC_NUMBERS[to]
            log.info("refused message to %s with %d (magic test number)", mask_phone(to), code)
            return 400, _error(400, code, text)
        sid, now = "SM" + uuid.uuid4().hex, _now_rfc2822()
        uri = f"/{API}/Accounts/{self.config.account_sid}/Messages/{sid}"
        callback = form.get("StatusCallback") or None
        message: dict[str, Any] = {
            "account_sid": self.config.account_sid,
            "api_version": API,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(num_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
            "status_callback": callback,
        }
        with self._lock:
            self._messages.append(message)
            self._by_sid[sid] = message
            # A copy, as later status changes must not show in this answer: the one nested dict
            # too (a deep copy cost as much as the rest of the request).
            answer = {**message, "subresource_uris": dict(message["subresource_uris"])}
        if log.isEnabledFor(logging.INFO):
            log.info("accepted message %s to %s (%s segments)", sid, mask_phone(to), message["num_segments"])
        if callback:
            self._schedule(sid, callback, "sent")
        return 201, answer

    def _account(self, numbers: bool, query: str) -> dict[str, Any]:
        """The account (``Accounts/{sid}.json``) or its numbers, filtered by ``PhoneNumber``."""
        sid, base = self.config.account_sid, f"/{API}/Accounts/{self.config.account_sid}"
        if not numbers:
            return {
                "sid": sid,
                "friendly_name": "Sandbox",
                "status": "active",
                "type": "Full",
                "uri": base + ".json",
            }
        wanted = dict(parse_qsl(query.replace("+", "%2B"))).get("PhoneNumber")
        owned = [n for n in self.config.phone_numbers if wanted in (None, n)]
        items = [
            {"sid": "PN" + uuid.uuid5(uuid.NAMESPACE_URL, n).hex, "phone_number": n, "account_sid": sid}
            for n in owned
        ]
        uri = base + "/IncomingPhoneNumbers.json"
        return {
            "incoming_phone_numbers": items,
            "page": 0,
            "page_size": 50,
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "uri": uri,
            "start": 0,
            "end": max(len(items) - 1, 0),
        }

    def _fetch(self, sid: str, path: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            found = copy.deepcopy(self._by_sid.get(sid))
        if found is None:
            return 404, _error(404, 20404, f"The requested resource {path} was not found")
        return 200, found

    def _list(self, query: str) -> tuple[int, dict[str, Any]]:
        # A raw '+' in a query string is a phone number's, not a form-encoded space.
        params = dict(parse_qsl(query.replace("+", "%2B"), keep_blank_values=True))
        filters = {k: params[k] for k in _FILTERS if params.get(k)}
        try:
            size = min(max(int(params.get("PageSize") or 50), 1), 1000)
            page = max(int(params.get("Page") or 0), 0)
            bounds = {k: _parse_iso(v) for k, v in filters.items() if k.startswith("DateSent")}
        except ValueError as exc:
            return 400, _error(400, 20001, f"Invalid parameter: {exc}")
        with self._lock:
            newest_first = copy.deepcopy(self._messages[::-1])
        picked = [
            m
            for m in newest_first
            if all(_date_matches(m, k, filters[k], bound) for k, bound in bounds.items())
            and all(m[k.lower()] == filters[k] for k in ("To", "From") if k in filters)
        ]
        # PageToken names the last message already seen, so paging survives new arrivals.
        token = params.get("PageToken", "")
        seen = [i for i, m in enumerate(picked) if "PA" + m["sid"] == token]
        start = seen[0] + 1 if seen else page * size
        items = picked[start : start + size]
        base = f"/{API}/Accounts/{self.config.account_sid}/Messages.json"

        def page_uri(**extra: Any) -> str:
            return base + "?" + urlencode({**filters, "PageSize": size, **extra}, quote_via=quote)

        more = start + size < len(picked)
        return 200, {
            "messages": items,
            "page": page,
            "page_size": size,
            "first_page_uri": page_uri(Page=0),
            "next_page_uri": page_uri(Page=page + 1, PageToken="PA" + items[-1]["sid"]) if more else None,
            "previous_page_uri": None,
            "uri": page_uri(Page=page, **({"PageToken": token} if token else {})),
            "start": start,
            "end": start + max(len(items) - 1, 0),
        }

    def _schedule(self, sid: str, url: str, status: str) -> None:
        self._callbacks.put(self.config.callback_delay_seconds, sid, url, status)

    def _advance(self, sid: str, url: str, status: str) -> None:
        with self._lock:
            message = self._by_sid[sid]
            sender, to = message["from"] or "", message["to"]
            final, code = self.config.outcomes.get(to, ("delivered", None))
            code = code if status == final and status != "delivered" else None
            now = _rfc2822(datetime.now(UTC))
            message.update(status=status, date_updated=now, date_sent=message["date_sent"] or now)
            if code is not None:
                message.update(error_code=code, error_message=f"sandbox: {status} with {code}")
        if status == "sent":
            self._schedule(sid, url, final)
        params = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.config.account_sid,
            "From": sender,
            "To": to,
            "MessageStatus": status,
            "SmsStatus": status,
            "ApiVersion": API,
        }
        if code is not None:
            params["ErrorCode"] = str(code)
        self._post(url, params)

    def _post(self, url: str, params: dict[str, str]) -> None:
        what = f"status callback {params['MessageStatus']} for {params['MessageSid']}"
        if urlsplit(url).scheme not in ("http", "https"):
            log.warning("%s dropped: not an http(s) URL", what)
            return
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url,
            data=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": self._validator.compute_signature(url, params),
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            # urlopen raises HTTPError for any non-2xx answer.
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                response.read()
        except Exception as exc:  # refused, timed out, non-2xx, malformed reply: all just dropped
            log.warning("%s dropped: %s", what, exc)


def serve(config: SandboxConfig, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C; prints one "listening" line to stdout once ready."""
    serve_until_stopped(
        TwilioSandbox(config, host, port), lambda sandbox: f"twilio sandbox listening on {sandbox.url}\n"
    )

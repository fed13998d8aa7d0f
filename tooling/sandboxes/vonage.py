"""A local, Vonage-compatible SMS API for demos and tests, over TLS.

The official ``vonage`` SDK talks to it unchanged once its hosts (``rest_host``, ``api_host``)
name it: the SDK always speaks ``https://``, so the sandbox does too, with a certificate from a
throwaway CA (``trustme``) whose PEM it writes to ``ca_file`` (``HERALD_VONAGE_CA_BUNDLE``).

- ``POST /sms/json`` (form or JSON; key + secret in the body or as Basic auth, or a signed
  request): captures the message and answers as Vonage does, a 200 whose ``messages[0].status``
  is ``"0"`` or a refusal; ``MAGIC_NUMBERS`` answer Vonage's error statuses.
- Delivery receipts, signed with the signature secret (when one is set) as Vonage signs them,
  posted to the message's ``callback`` (or ``receipts_url``), as JSON or a form: ``accepted``,
  then the number's outcome (``delivered`` unless ``outcomes`` or ``MAGIC_OUTCOMES`` say).
- ``GET /v2/reports/records`` (the Reports API: by ``id``, or by ``date_start``/``date_end``) and
  ``GET /account/get-balance``: what reconciliation and ``herald integrations connect vonage`` read.
- ``POST /sandbox/faults`` (JSON, test control): ``times``/``status``/``code``/``retry_after``
  (HTTP errors: 5xx storms, 429), ``delay_seconds`` (slow before anything is taken),
  ``late_times``/``late_seconds`` (take the message, then answer late: the client times out, the
  message exists: ambiguous) and ``drop_times`` (take it, then hang up without an answer).
"""

from __future__ import annotations

import copy
import json
import logging
import secrets
import socket
import ssl
import tempfile
import threading
import time
import urllib.request
import uuid
from base64 import b64decode
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import trustme
from vonage_http_client import Auth

from infra.masking import mask_phone
from tooling.sandboxes.faults import FaultPlan
from tooling.sandboxes.http import DelayedPosts, HttpSandbox, SandboxHandler, SandboxServer
from tooling.sandboxes.running import serve_until_stopped

log = logging.getLogger("herald.sandbox.vonage")

#: Recipients (as Vonage takes them: E.164 without ``+``) refused with a Vonage SMS API status.
MAGIC_NUMBERS: dict[str, tuple[int, str]] = {
    "447700900001": (3, "Invalid to number"),
    "447700900002": (7, "Number barred"),
    "447700900003": (29, "Non White-listed Destination"),
    "447700900004": (1, "Throughput Rate Exceeded - please wait [ 1000 ] and retry"),
    "447700900005": (5, "Internal Error"),
    "447700900006": (9, "Quota Exceeded - rejected"),
    "447700900007": (6, "Invalid Message"),
    "447700900008": (33, "Number de-activated"),
}
#: Recipients whose receipt ends otherwise than ``delivered``: (status, err-code).
MAGIC_OUTCOMES: dict[str, tuple[str, int]] = {
    "447700900101": ("failed", 3),  # absent subscriber, permanent
    "447700900102": ("expired", 2),  # absent subscriber, temporary
    "447700900103": ("rejected", 6),  # anti-spam rejection
}
_REPORTS = "/v2/reports/records"


@dataclass
class VonageConfig:
    """Credentials the sandbox accepts, how it signs receipts, and how fast it reports delivery."""

    api_key: str
    api_secret: str
    #: Receipts are signed with it when set (the account's signed-webhooks setting), else unsigned.
    signature_secret: str | None = None
    signature_method: str = "md5"
    #: Where receipts go when a message names no ``callback`` (the account's default webhook).
    receipts_url: str | None = None
    #: ``json`` (Vonage's OpenAPI format) or ``form``.
    receipt_format: str = "json"
    receipt_delay_seconds: float = 0.05
    #: The carrier's verdict per recipient (without ``+``), over ``MAGIC_OUTCOMES``.
    outcomes: dict[str, tuple[str, int]] = field(default_factory=dict)
    balance: float = 10.0


def _answer(status: str, **fields: Any) -> dict[str, Any]:
    return {"message-count": "1", "messages": [{"status": status, **fields}]}


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_iso(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


class _Server(SandboxServer):
    name, logger = "vonage sandbox", log
    sandbox: VonageSandbox
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        # The TLS handshake happens in the connection's own thread (on its first read), so a slow
        # client never holds up the others' accepts.
        conn, address = self.socket.accept()
        return self.context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address


class _Handler(SandboxHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Vonage's API does

    def _dispatch(self) -> None:
        sandbox, parts = self.server.sandbox, urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if parts.path == "/sandbox/faults" and self.command == "POST":
            self._send(200, sandbox.configure(json.loads(raw or "{}")))
        elif parts.path == "/sms/json" and self.command == "POST":
            self._sms(raw)
        elif parts.path == "/account/get-balance" and self.command == "GET":
            params = dict(parse_qsl(parts.query))
            if self._authorized(params):
                self._send(200, {"value": sandbox.config.balance, "autoReload": False})
            else:
                self._send(401, {"type": "unauthorized", "title": "Bad Credentials"})
        elif parts.path == _REPORTS and self.command == "GET":
            params = dict(parse_qsl(parts.query))
            if not self._authorized(params) or params.get("account_id") != sandbox.config.api_key:
                self._send(401, {"type": "unauthorized", "title": "Unauthorized"})
            else:
                self._send(*sandbox.records(params))
        else:
            self._send(404, {"type": "not_found", "title": f"no resource {parts.path}"})

    do_GET = do_POST = _dispatch

    def _sms(self, raw: str) -> None:
        sandbox = self.server.sandbox
        if self.headers.get("Content-Type", "").startswith("application/json"):
            loaded = json.loads(raw or "{}")
            params = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
        else:
            params = dict(parse_qsl(raw, keep_blank_values=True))
        fault = sandbox.faults.take()
        if fault is not None:
            sandbox.faults.note(fault.status)
            problem = {"type": "error", "title": fault.message, "detail": f"code {fault.code}"}
            self._send(fault.status, problem, retry_after=fault.retry_after)
            return
        if not self._authorized(params):
            if "sig" in params:
                self._send(200, _answer("14", **{"error-text": "Invalid Signature"}))
            else:
                self._send(200, _answer("4", **{"error-text": "Bad Credentials"}))
            return
        answer = sandbox.create(params)
        sandbox.faults.note(200)
        late, drop = sandbox.take_late(), sandbox.take_drop()
        if drop:
            log.info("took the message, hanging up without an answer (planned)")
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if late:
            time.sleep(late)  # the message is taken; the answer comes after the client gave up
        self._send(200, answer)

    def _authorized(self, params: dict[str, str]) -> bool:
        config = self.server.sandbox.config
        scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = b64decode(encoded, validate=True).decode().partition(":")
            except ValueError:
                return False
            return (user, password) == (config.api_key, config.api_secret)
        if params.get("api_key") != config.api_key:
            return False
        if "sig" in params:  # a signed request: checked as Vonage does, over what was sent
            signer = self.server.sandbox.signer
            signed = {k: v for k, v in params.items() if k != "sig"}
            return signer is not None and signer.check_signature({**signed, "sig": params["sig"]})
        return params.get("api_secret") == config.api_secret

    def _send(self, status: int, payload: dict[str, Any], retry_after: float | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", f"{retry_after:g}")
        self.end_headers()
        self.wfile.write(body)


class VonageSandbox(HttpSandbox):
    """The sandbox server; ``start()`` serves in daemon threads, ``stop()`` ends it."""

    def __init__(
        self, config: VonageConfig, host: str = "127.0.0.1", port: int = 0, ca_file: str | None = None
    ) -> None:
        self.config = config
        self._host, self._port = host, port
        self._ca = trustme.CA()
        self._ca_file = ca_file
        self.signer = (
            Auth(
                api_key=config.api_key,
                signature_secret=config.signature_secret,
                signature_method=config.signature_method,
            )
            if config.signature_secret
            else None
        )
        self.faults = FaultPlan()
        self._lock = threading.Lock()
        self._late: list[float] = []
        self._drops = 0
        self._messages: list[dict[str, Any]] = []
        self._receipts = DelayedPosts(self._advance, "receipt", log)
        self._server: _Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def host(self) -> str:
        """``host:port`` as the SDK's ``rest_host`` / ``api_host`` (``HERALD_VONAGE_REST_URL``)."""
        return f"{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def ca_file(self) -> str:
        """The PEM of the CA the sandbox's certificate is signed by (``HERALD_VONAGE_CA_BUNDLE``)."""
        if self._ca_file is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="herald-vonage-ca-")
            self._ca_file = str(Path(self._tmp.name) / "ca.pem")
        if not Path(self._ca_file).exists():
            self._ca.cert_pem.write_to_path(self._ca_file)
        return self._ca_file

    def start(self) -> None:
        """Bind and serve in daemon threads; returns once the port accepts connections."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(self._host, "localhost", "127.0.0.1").configure_cert(context)
        _ = self.ca_file
        server = _Server((self._host, self._port), _Handler)
        server.sandbox, server.context = self, context
        self._receipts = DelayedPosts(self._advance, "receipt", log)
        self._serve(server, self._receipts.run)

    def stop(self) -> None:
        """Stop serving and drop receipts not yet posted."""
        self._receipts.close()
        self._stop_serving()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- Faults -------------------------------------------------------------------------------

    def answer_late(self, times: int, seconds: float) -> None:
        """Take the next ``times`` messages, then answer each ``seconds`` late."""
        with self._lock:
            self._late.extend([seconds] * times)

    def drop_after_taking(self, times: int) -> None:
        """Take the next ``times`` messages, then hang up without an answer."""
        with self._lock:
            self._drops += times

    def take_late(self) -> float:
        with self._lock:
            return self._late.pop(0) if self._late else 0.0

    def take_drop(self) -> bool:
        with self._lock:
            if self._drops:
                self._drops -= 1
                return True
            return False

    def configure(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST /sandbox/faults``: the ``FaultPlan``'s keys, and ``late_*`` / ``drop_times``."""
        self.faults.configure(spec)
        if int(spec.get("late_times", 0)) > 0:
            self.answer_late(int(spec["late_times"]), float(spec.get("late_seconds", 5)))
        if int(spec.get("drop_times", 0)) > 0:
            self.drop_after_taking(int(spec["drop_times"]))
        with self._lock:
            return {**self.faults.state(), "late": len(self._late), "drops": self._drops}

    # --- Messages -----------------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """A copy of every message taken, oldest first, as the Reports API shows it."""
        with self._lock:
            return copy.deepcopy(self._messages)

    def create(self, params: dict[str, str]) -> dict[str, Any]:
        """Take a message (or refuse it): Vonage's answer."""
        to, sender, text = params.get("to", ""), params.get("from", ""), params.get("text", "")
        if not to or not sender or not text:
            missing = next(k for k, v in (("to", to), ("from", sender), ("text", text)) if not v)
            return _answer("2", **{"error-text": f"Missing {missing}"})
        if to in MAGIC_NUMBERS:
            status, message = MAGIC_NUMBERS[to]
            log.info("refused message to %s with status %d (magic number)", mask_phone("+" + to), status)
            return _answer(str(status), **{"error-text": message})
        ref = params.get("client-ref") or None
        record: dict[str, Any] = {
            "account_id": self.config.api_key,
            "message_id": str(uuid.uuid4()),
            "client_ref": ref,
            "direction": "outbound",
            "product": "SMS",
            "from": sender,
            "to": to,
            "message_body": text,
            "status": "submitted",
            "error_code": None,
            "date_received": _iso(datetime.now(UTC)),
            "price": "0.0333",
            "currency": "EUR",
        }
        with self._lock:
            self._messages.append(record)
        log.info("took message %s to %s", record["message_id"], mask_phone("+" + to))
        callback = params.get("callback") or self.config.receipts_url
        if callback and params.get("status-report-req", "true").lower() != "false":
            self._receipts.put(self.config.receipt_delay_seconds, record["message_id"], callback, "accepted")
        extra = {"client-ref": ref} if ref else {}
        return _answer(
            "0",
            to=to,
            **{"message-id": record["message_id"], "remaining-balance": "9.9", "message-price": "0.0333"},
            network="23410",
            **extra,
        )

    def records(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The Reports API's synchronous records, by ``id`` or by date range."""
        try:
            start = _parse_iso(params["date_start"]) if params.get("date_start") else None
            end = _parse_iso(params["date_end"]) if params.get("date_end") else None
        except ValueError as exc:
            return 400, {"type": "invalid", "title": f"invalid date: {exc}"}
        if params.get("product") != "SMS" or (not params.get("id") and start is None):
            return 400, {"type": "invalid", "title": "product=SMS and an id or date_start are required"}
        ids = set(params["id"].split(",")) if params.get("id") else None
        with self._lock:
            found = [
                copy.deepcopy(r)
                for r in self._messages
                if (ids is None or r["message_id"] in ids)
                and (start is None or _parse_iso(r["date_received"]) >= start)
                and (end is None or _parse_iso(r["date_received"]) <= end)
            ]
        if params.get("include_message") != "true":
            for r in found:
                r.pop("message_body", None)
        return 200, {
            "request_status": "SUCCESS",
            "records": found[:1000],
            "_links": {"self": {"href": _REPORTS}},
        }

    # --- Receipts -----------------------------------------------------------------------------

    def _advance(self, message_id: str, url: str, status: str) -> None:
        with self._lock:
            record = next(r for r in self._messages if r["message_id"] == message_id)
            final, code = self.config.outcomes.get(record["to"]) or MAGIC_OUTCOMES.get(
                record["to"], ("delivered", 0)
            )
            code = code if status == final else 0
            record.update(status=status, error_code=str(code) if code else None)
            receipt = self.receipt(record, status, code)
        if status == "accepted":
            self._receipts.put(self.config.receipt_delay_seconds, message_id, url, final)
        self._post(url, receipt)

    def receipt(self, record: dict[str, Any], status: str, code: int) -> dict[str, str]:
        """A delivery receipt as Vonage sends it, signed when the sandbox has a signature secret."""
        now = datetime.now(UTC)
        params = {
            "msisdn": record["to"],
            "to": record["from"],
            "network-code": "23410",
            "messageId": record["message_id"],
            "price": record["price"],
            "status": status,
            "scts": now.strftime("%y%m%d%H%M"),
            "err-code": str(code),
            "api-key": self.config.api_key,
            "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if record["client_ref"]:
            params["client-ref"] = record["client_ref"]
        if self.signer is not None:
            params["timestamp"] = str(int(time.time()))
            params["nonce"] = secrets.token_hex(8)
            params["sig"] = self.signer.sign_params(dict(params))
        return params

    def _post(self, url: str, params: dict[str, str]) -> None:
        what = f"receipt {params['status']} for {params['messageId']}"
        if urlsplit(url).scheme not in ("http", "https"):
            log.warning("%s dropped: not an http(s) URL", what)
            return
        if self.config.receipt_format == "form":
            data, kind = urlencode(params).encode(), "application/x-www-form-urlencoded"
        else:
            data, kind = json.dumps(params).encode(), "application/json"
        request = urllib.request.Request(url, data=data, headers={"Content-Type": kind})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                response.read()
        except Exception as exc:  # refused, timed out, non-2xx: dropped (Vonage would retry)
            log.warning("%s dropped: %s", what, exc)


def serve(config: VonageConfig, host: str, port: int, ca_file: str | None) -> None:
    """Serve until SIGTERM or Ctrl-C; prints one "listening" line (with the CA's file) once ready."""
    serve_until_stopped(
        VonageSandbox(config, host, port, ca_file),
        lambda sandbox: f"vonage sandbox listening on {sandbox.url} (CA: {sandbox.ca_file})\n",
    )

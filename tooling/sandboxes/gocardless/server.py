"""A local, GoCardless-compatible API (version 2015-07-06) for demos and tests.

The official ``gocardless-pro`` client talks to it unchanged
(``gocardless_pro.Client(access_token=…, base_url=sandbox.url)``). It serves
customers, customer bank accounts, mandates, payments, billing requests, billing
request flows and events with GoCardless's cursor pagination, error envelope and
Idempotency-Key rule, and sends signed webhooks when things move on. The rules
live in ``gocardless_state``, the test helpers in ``gocardless_admin``, the
webhook sender in ``gocardless_webhooks``; this module is the HTTP side.

Besides the API: ``GET /flow/{BRF…}`` is the payer's page (its button completes the
flow and redirects to ``redirect_uri``), and with the access token,
``POST /sandbox/billing_request_flows/{id}/complete``, ``POST /sandbox/payments/{id}/status``,
``POST /sandbox/mandates/{id}/status`` (``{"status": …, "webhook": true}``) and
``POST /sandbox/webhooks`` (``{"events": [ids], "times": 1, "reverse": false}``).
"""

from __future__ import annotations

import html
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tooling.sandboxes.gocardless.admin import SandboxAdmin
from tooling.sandboxes.gocardless.state import JSON, ApiFailure, usage_error
from tooling.sandboxes.gocardless.webhooks import WebhookSender, sign
from tooling.sandboxes.http import HttpSandbox, SandboxHandler, SandboxServer
from tooling.sandboxes.running import serve_until_stopped

__all__ = ["ApiFailure", "GoCardlessConfig", "GoCardlessSandbox", "serve", "sign"]

log = logging.getLogger("herald.sandbox.gocardless")

API_VERSION = "2015-07-06"
_API = re.compile(
    r"^/(customers|customer_bank_accounts|mandates|payments|billing_requests|billing_request_flows|events"
    r"|creditors)"
    r"(?:/([A-Za-z0-9]+)(/actions/cancel)?)?$"
)
_LISTABLE = frozenset(
    {"customers", "customer_bank_accounts", "mandates", "payments", "billing_requests", "events", "creditors"}
)
_CANCELLABLE = frozenset({"payments", "mandates"})
#: GoCardless has no GET for these (a flow is created, or initialised, never read back).
_NOT_FETCHABLE = frozenset({"billing_request_flows"})
_FLOW = re.compile(r"^/flow/(BRF[A-Za-z0-9]+)$")
_ADMIN = re.compile(
    r"^/sandbox/(?:(billing_request_flows)/(\w+)/complete|(payments|mandates)/(\w+)/status|webhooks)$"
)


@dataclass
class GoCardlessConfig:
    """What the sandbox accepts and where (and how hard) it sends webhooks."""

    access_token: str
    webhook_secret: str = ""
    webhook_url: str | None = None
    webhook_attempts: int = 3
    webhook_retry_seconds: float = 0.2
    webhook_timeout_seconds: float = 2.0


class _Server(SandboxServer):
    name, logger = "gocardless sandbox", log
    sandbox: GoCardlessSandbox


class _Handler(SandboxHandler):
    server: _Server

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if flow := _FLOW.match(parts.path):
                self._flow_page(flow.group(1))
                return
            self._authorise()
            if admin := _ADMIN.match(parts.path):
                status, payload = 200, self._admin(admin, self._body(raw))
            elif api := _API.match(parts.path):
                self._check_version()
                status, payload = self._api(api, parts.query, raw)
                self.server.sandbox._answer_late()
            else:
                raise usage_error(404, "path_not_found", f"Path {parts.path} not found")
        except ApiFailure as failure:
            status, payload = failure.status, failure.envelope()
        except Exception:
            log.exception("gocardless sandbox failed on %s %s", self.command, parts.path)
            crash = [{"reason": "internal_server_error", "message": "Internal server error"}]
            status, payload = 500, ApiFailure(500, "gocardless", "Internal server error", crash).envelope()
        self._send(status, json.dumps(payload).encode(), "application/json")

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _authorise(self) -> None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token != self.server.sandbox.config.access_token:
            raise ApiFailure(
                401,
                "invalid_api_usage",
                "Access token not found",
                [{"reason": "access_token_not_found", "message": "Access token not found"}],
            )

    def _check_version(self) -> None:
        version = self.headers.get("GoCardless-Version")
        if version is None:
            raise usage_error(400, "missing_version_header", "GoCardless-Version header is required")
        if version != API_VERSION:
            raise usage_error(400, "version_not_found", f"Version {version} not found")

    @staticmethod
    def _body(raw: bytes) -> JSON:
        try:  # the client sends ``null`` for an action called without params
            body = json.loads(raw or b"{}")
        except ValueError:
            body = []
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise usage_error(400, "invalid_document_structure", "Invalid document structure")
        return body

    def _api(self, match: re.Match[str], query: str, raw: bytes) -> tuple[int, JSON]:
        sandbox, (kind, resource_id, action) = self.server.sandbox, match.groups()
        if self.command == "GET" and resource_id is None and kind in _LISTABLE:
            return 200, sandbox.list_page(kind, dict(parse_qsl(query)))
        if self.command == "GET" and resource_id and not action and kind not in _NOT_FETCHABLE:
            return 200, sandbox.fetch(kind, resource_id)
        if self.command == "GET" and resource_id and not action:
            raise usage_error(404, "path_not_found", f"Path {self.path} not found")
        if self.command == "POST" and resource_id is None and kind not in ("events", "creditors"):
            return 201, sandbox.create(kind, self._body(raw), self.headers.get("Idempotency-Key"))
        if self.command == "POST" and action and kind in _CANCELLABLE:
            return 200, sandbox.cancel(kind, resource_id, self._body(raw))
        raise usage_error(405, "method_not_allowed", f"{self.command} is not allowed on {self.path}")

    def _admin(self, match: re.Match[str], body: JSON) -> JSON:
        sandbox = self.server.sandbox
        if self.command != "POST":
            raise usage_error(405, "method_not_allowed", "Use POST")
        flow_kind, flow_id, kind, resource_id = match.groups()
        webhook = bool(body.get("webhook", True))
        if flow_kind:
            done = sandbox.complete_flow(
                flow_id,
                customer=body.get("customer"),
                mandate_status=body.get("mandate_status") or "active",
                webhook=webhook,
            )
            return {"billing_requests": done}
        if kind is not None:
            move = sandbox.set_payment_status if kind == "payments" else sandbox.set_mandate_status
            return {"events": move(resource_id, str(body.get("status")), webhook=webhook)}
        try:
            sent = sandbox.send_webhook(
                body.get("events") or [], times=int(body.get("times", 1)), reverse=bool(body.get("reverse"))
            )
        except KeyError as exc:
            raise usage_error(404, "resource_not_found", f"Event {exc} not found") from exc
        return {"webhook_id": sent}

    def _flow_page(self, flow_id: str) -> None:
        """The payer's side of a flow: a page with one button, which completes it."""
        sandbox = self.server.sandbox
        try:
            flow = sandbox.record(flow_id)
        except KeyError:
            self._send(404, b"<h1>No such flow</h1>", "text/html; charset=utf-8")
            return
        if self.command == "POST":
            sandbox.complete_flow(flow_id)
            if flow["redirect_uri"]:
                self._send(303, b"", "text/html; charset=utf-8", location=flow["redirect_uri"])
                return
        request = sandbox.record(flow["links"]["billing_request"])
        done = request["status"] != "pending"
        page = (
            f"<!doctype html><title>GoCardless sandbox</title><h1>Set up a Direct Debit</h1>"
            f"<p>Billing request {html.escape(request['id'])}: "
            f"{html.escape(request['mandate_request']['currency'])} mandate, "
            f"{html.escape(request['status'])}.</p>"
            + ("" if done else '<form method="post"><button>Confirm</button></form>')
        )
        self._send(200, page.encode(), "text/html; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)


class GoCardlessSandbox(SandboxAdmin, HttpSandbox):
    """The served sandbox; ``start()`` serves in daemon threads, ``stop()`` ends it.

    Every helper of ``SandboxAdmin`` (seeding, ``complete_flow``, ``set_payment_status``,
    ``send_webhook``…) and of ``SandboxState`` (``record``, ``records``) is available on it.
    """

    def __init__(self, config: GoCardlessConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.config = config
        self._host, self._port = host, port
        self._webhooks = WebhookSender(
            config.webhook_secret,
            config.webhook_attempts,
            config.webhook_retry_seconds,
            config.webhook_timeout_seconds,
        )
        self._webhooks.url = config.webhook_url
        self._server: _Server | None = None
        #: Seconds between doing an API request (a payment created…) and answering it (tests may change it).
        self.delay_seconds = 0.0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @property
    def webhook_url(self) -> str | None:
        """Where webhooks are POSTed; ``None`` records events without sending them."""
        return self._webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        self._webhooks.url = url

    @property
    def in_flight(self) -> int:
        """API requests done but not answered yet (inside ``delay_seconds``)."""
        with self._in_flight_lock:
            return self._in_flight

    def _answer_late(self) -> None:
        delay = self.delay_seconds
        if delay <= 0:
            return
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            time.sleep(delay)  # a slow provider, on purpose: the client may die before the answer
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def start(self) -> None:
        """Bind and serve; returns once the port accepts connections."""
        server = _Server((self._host, self._port), _Handler)
        server.sandbox = self
        self._server = server
        self.public_base = self.url
        self._webhooks.start()
        self._serve(server)

    def stop(self) -> None:
        """Stop serving and drop webhooks not yet delivered."""
        self._webhooks.stop()
        self._stop_serving()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every webhook POST so far (``webhook_id``, ``url``, ``event_ids``, ``attempt``,
        ``status``, ``error``), retries included, oldest first."""
        return self._webhooks.deliveries()

    def _send(self, events: list[JSON], times: int) -> str | None:
        return self._webhooks.send(events, times)


def serve(config: GoCardlessConfig, host: str, port: int) -> None:
    """Serve until SIGTERM or Ctrl-C; prints one "listening" line to stdout once ready."""
    webhooks = f"webhooks go to {config.webhook_url}\n" if config.webhook_url else ""
    serve_until_stopped(
        GoCardlessSandbox(config, host, port),
        lambda sandbox: f"gocardless sandbox listening on {sandbox.url}\n{webhooks}",
    )

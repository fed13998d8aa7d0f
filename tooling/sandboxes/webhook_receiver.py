"""A local webhook receiver for demos and tests: verifies Standard Webhooks signatures with the
``standardwebhooks`` library, keeps what it received (queryable over HTTP), and fails on request.

    POST /<any path>           a webhook: 401 when no configured secret verifies it, else 204
    GET  /sandbox/received     what came: ?accepted=true (verified and answered 2xx), ?type=…
    DELETE /sandbox/received   forget it
    POST /sandbox/faults       {"times": N, "status": 500} the next N requests,
                               {"for_seconds": 30, "status": 500} every request for 30 s,
                               {"delay_seconds": 2} answer slowly, {"retry_after": 5} with Retry-After
    POST /sandbox/secrets      {"secrets": ["whsec_…", …]}: the secrets that verify from now on
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tooling.sandboxes.faults import FaultPlan
from tooling.sandboxes.http import HttpSandbox, SandboxHandler, SandboxServer
from tooling.sandboxes.running import serve_until_stopped

log = logging.getLogger("herald.sandbox.webhooks")
MAX_BODY = 1024 * 1024


@dataclass
class Received:
    """One request as the receiver saw it."""

    webhook_id: str
    type: str | None
    verified: bool
    answered: int
    at: str
    payload: Any = None
    path: str = "/"
    #: The whole body came (False: the sender went away mid-request, e.g. a SIGKILL, and the
    #: truncated body cannot verify).
    complete: bool = True


@dataclass
class _Outage:
    until: float = 0.0
    status: int = 500


@dataclass
class ReceiverState:
    """What the receiver was sent, its secrets, and its planned failures (thread-safe)."""

    secrets: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    faults: FaultPlan = field(default_factory=FaultPlan)
    outage: _Outage = field(default_factory=_Outage)
    retry_after: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, body: bytes, headers: dict[str, str]) -> Any:
        """The payload when one of the secrets verifies it, else ``WebhookVerificationError``."""
        with self.lock:
            secrets = list(self.secrets)
        for secret in secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        raise WebhookVerificationError("no configured secret verifies this message")

    def accepted(self) -> list[Received]:
        """Verified messages answered 2xx, in arrival order (duplicates included)."""
        with self.lock:
            return [r for r in self.received if r.verified and 200 <= r.answered < 300]

    def duplicates(self) -> int:
        """Accepted messages whose webhook-id had been accepted before."""
        counts = Counter(r.webhook_id for r in self.accepted())
        return sum(n - 1 for n in counts.values())


class _Handler(SandboxHandler):
    server: _Server

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, default=str).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY))

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/sandbox/received":
            self._send(404, {"error": "not found"})
            return
        query = parse_qs(parts.query)
        state = self.server.state
        rows = state.accepted() if query.get("accepted") == ["true"] else list(state.received)
        if "type" in query:
            rows = [r for r in rows if r.type in query["type"]]
        self._send(200, {"received": [r.__dict__ for r in rows], "duplicates": state.duplicates()})

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/sandbox/received":
            with self.server.state.lock:
                self.server.state.received.clear()
            self._send(204)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        state = self.server.state
        body = self._body()
        if path in ("/sandbox/faults", "/sandbox/secrets"):
            spec = json.loads(body or b"{}")
            if path == "/sandbox/secrets":
                with state.lock:
                    state.secrets = [str(s) for s in spec.get("secrets", [])]
                self._send(200, {"secrets": len(state.secrets)})
                return
            configure(state, spec)
            self._send(200, state.faults.state())
            return
        self._webhook(path, body)

    def _webhook(self, path: str, body: bytes) -> None:
        state = self.server.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        planned = state.faults.take()  # sleeps the planned delay first
        status = 204
        if planned is not None:
            status = planned.status
        elif time.monotonic() < state.outage.until:
            status = state.outage.status
        payload: Any = None
        try:
            payload = state.verify(body, headers)
            verified = True
        except WebhookVerificationError:
            verified, status = False, 401
        received = Received(
            webhook_id=headers.get("webhook-id", ""),
            type=payload.get("type") if isinstance(payload, dict) else None,
            verified=verified,
            answered=status,
            at=datetime.now(UTC).isoformat(),
            payload=payload,
            path=path,
            complete=len(body) >= min(int(self.headers.get("Content-Length") or 0), MAX_BODY),
        )
        with state.lock:
            state.received.append(received)
        state.faults.note(status)
        extra = {"Retry-After": str(int(state.retry_after))} if state.retry_after and status >= 400 else {}
        self._send(status, None if status < 300 else {"error": "sandbox says no"}, extra)


def configure(state: ReceiverState, spec: dict[str, Any]) -> None:
    """Plan failures (the body of ``POST /sandbox/faults``)."""
    state.faults.configure(spec)
    if "for_seconds" in spec:
        state.outage = _Outage(time.monotonic() + float(spec["for_seconds"]), int(spec.get("status", 500)))
    if "retry_after" in spec:
        state.retry_after = float(spec["retry_after"]) if spec["retry_after"] is not None else None


class _Server(SandboxServer):
    name = "webhook receiver"
    logger = log
    state: ReceiverState


class WebhookReceiver(HttpSandbox):
    """The receiver on ``host``:``port`` (0: a free one); ``state`` is what it holds."""

    def __init__(self, secrets: list[str] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host, self._port = host, port
        self._server: SandboxServer | None = None
        self.state = ReceiverState(secrets=list(secrets or []))

    def start(self) -> None:
        server = _Server((self._host, self._port), _Handler)
        server.state = self.state
        self._serve(server)

    def stop(self) -> None:
        self._stop_serving()
        self._server = None

    def fail_for(self, seconds: float, status: int = 500) -> None:
        """Answer every webhook with ``status`` for ``seconds`` from now."""
        configure(self.state, {"for_seconds": seconds, "status": status})


def serve(secrets: list[str], host: str, port: int) -> None:
    """Run the receiver until SIGTERM or Ctrl-C."""
    serve_until_stopped(
        WebhookReceiver(secrets, host, port),
        lambda r: (
            f"webhook receiver on {r.url} ({len(secrets)} secret(s)); received: {r.url}/sandbox/received\n"
        ),
    )

"""A local SMTP capture server (``aiosmtpd``) for demos and tests.

It accepts plain SMTP (and AUTH PLAIN/LOGIN without TLS when credentials are
configured), keeps every message it accepts, parsed, and answers magic
recipient addresses with SMTP errors so senders can exercise their error
handling:

- ``reject…@any.domain`` → ``550 5.1.1`` (permanent: no such mailbox)
- ``busy…@any.domain`` → ``451 4.3.0`` every time (transient)
- ``flaky…@any.domain`` → ``451 4.3.0`` the first time that address is seen, then accepted
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import uuid
import warnings
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from infra.masking import mask_email
from tooling.local.ports import free_port
from tooling.sandboxes.running import serve_until_stopped

log = logging.getLogger("herald.sandbox.smtp")
# aiosmtpd logs every command line (``RCPT TO:<address>``) at INFO: keep addresses out of the logs.
logging.getLogger("mail.log").setLevel(logging.ERROR)

REJECT = "550 5.1.1 Mailbox unavailable (sandbox magic address)"
BUSY = "451 4.3.0 Try again later (sandbox magic address)"


def magic_reply(address: str, seen_before: bool) -> str | None:
    """The error a magic recipient answers with, or ``None`` to accept it."""
    local = address.partition("@")[0].lower()
    if local.startswith("reject"):
        return REJECT
    if local.startswith("busy") or (local.startswith("flaky") and not seen_before):
        return BUSY
    return None


class _Handler:
    """aiosmtpd's hooks: decide each recipient, keep each message."""

    def __init__(self, sandbox: SmtpSandbox) -> None:
        self._sandbox = sandbox

    async def handle_RCPT(
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self._sandbox._recipient(address)
        if reply is not None:
            log.info("refused recipient %s: %s", mask_email(address), reply[:3])
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        queued = self._sandbox._keep(data, envelope.rcpt_tos)
        if self._sandbox.delay_seconds > 0:
            # A slow server that already has the message: a sender that dies now cannot know.
            self._sandbox._answering(1)
            try:
                await asyncio.sleep(self._sandbox.delay_seconds)
            finally:
                self._sandbox._answering(-1)
        return f"250 2.0.0 OK queued as {queued}"


class _Controller(Controller):
    """A controller whose server takes the sandbox's AUTH settings; it makes one server per
    connection, so it counts them."""

    def __init__(self, handler: _Handler, host: str, port: int, auth: tuple[str, str] | None) -> None:
        super().__init__(handler, hostname=host, port=port)
        self._auth = auth
        self._lock = threading.Lock()
        self.connections = 0

    def factory(self) -> SMTPServer:
        with self._lock:
            self.connections += 1
        if self._auth is None:
            return SMTPServer(self.handler, hostname="herald-sandbox")
        expected = self._auth

        def authenticate(
            server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login.decode(), data.password.decode()) == expected
            return AuthResult(success=ok, handled=False)

        # No TLS here, so AUTH over plain text is allowed (and its warning silenced): a sandbox.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return SMTPServer(
                self.handler,
                hostname="herald-sandbox",
                authenticator=authenticate,
                auth_required=True,
                auth_require_tls=False,
            )


class SmtpSandbox:
    """The capture server; ``start()`` serves in a thread, ``stop()`` ends it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        username: str | None = None,
        password: str | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        self.host, self._port = host, port
        #: Seconds between keeping a message and answering its DATA with 250 (tests may change it).
        self.delay_seconds = delay_seconds
        self._in_flight = 0
        self._auth = (username, password or "") if username else None
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self._seen: set[str] = set()
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._port

    @property
    def messages(self) -> list[EmailMessage]:
        """A copy of every accepted message, oldest first, parsed."""
        with self._lock:
            return copy.deepcopy(self._messages)

    @property
    def connections(self) -> int:
        """SMTP connections the sandbox has accepted since it started (a sender that keeps its
        connection open sends many messages on one)."""
        return self._controller.connections if self._controller else 0

    @property
    def in_flight(self) -> int:
        """Messages kept but not answered yet (inside ``delay_seconds``)."""
        with self._lock:
            return self._in_flight

    def start(self) -> None:
        """Bind and serve in a thread; returns once the port accepts connections."""
        if self._port == 0:
            # aiosmtpd checks readiness by connecting to the configured port, so 0 is resolved here.
            self._port = free_port(self.host)
        self._controller = _Controller(_Handler(self), self.host, self._port, self._auth)
        self._controller.start()
        # start() made sure the port answers by connecting once: that one is not a sender's.
        self._controller.connections = 0

    def stop(self) -> None:
        """Stop serving."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _recipient(self, address: str) -> str | None:
        with self._lock:
            seen = address.lower() in self._seen
            self._seen.add(address.lower())
        return magic_reply(address, seen)

    def _answering(self, change: int) -> None:
        with self._lock:
            self._in_flight += change

    def _keep(self, data: bytes, recipients: list[str]) -> str:
        # CRLF is SMTP's line end; stored mail uses Python's, so parts read back as they were written.
        message = BytesParser(policy=policy.default).parsebytes(data.replace(b"\r\n", b"\n"))
        assert isinstance(message, EmailMessage)  # policy.default parses into EmailMessage
        queued = uuid.uuid4().hex[:12]
        with self._lock:
            self._messages.append(message)
        masked = ", ".join(mask_email(r) for r in recipients)
        log.info("accepted email %s to %s (%s)", message["Message-ID"], masked, queued)
        return queued


def serve(host: str, port: int, *, username: str | None = None, password: str | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C; prints one "listening" line to stdout once ready."""
    serve_until_stopped(
        SmtpSandbox(host, port, username=username, password=password),
        lambda sandbox: f"smtp sandbox listening on {sandbox.host}:{sandbox.port}\n",
    )

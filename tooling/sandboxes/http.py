"""What the HTTP sandboxes (Twilio, GoCardless) share: a threaded server whose failures go to the
sandbox's log rather than stderr, and request lines at DEBUG (they carry phone numbers and ids)."""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server for one sandbox: ``name`` and ``logger`` say which."""

    name = "sandbox"
    logger = logging.getLogger("herald.sandbox")

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.logger.exception("%s failed to answer %s", self.name, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    """A request handler that logs its request lines on the server's logger, at DEBUG."""

    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry phone numbers and ids in query strings: keep them out of INFO.
        self.server.logger.debug("%s %s", self.address_string(), format % args)


class HttpSandbox:
    """A sandbox served by a ``SandboxServer`` on ``_host``:``_port`` (0: a free port): its address
    and the context manager; ``start()`` and ``stop()`` are the sandbox's own."""

    _host: str
    _port: int
    _server: SandboxServer | None

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        return self._server.server_address[1] if self._server else self._port

    @property
    def url(self) -> str:
        """Base URL to give the provider's client (twilio's ``client.api.base_url``, gocardless's
        ``base_url``)."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

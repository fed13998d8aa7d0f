"""What the HTTP sandboxes (Twilio, GoCardless) share: a threaded server whose failures go to the
sandbox's log rather than stderr, and request lines at DEBUG (they carry phone numbers and ids)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class SandboxServer(ThreadingHTTPServer):
    """A threaded HTTP server for one sandbox: ``name`` and ``logger`` say which."""

    name = "sandbox"
    logger = logging.getLogger("herald.sandbox")
    # socketserver's default backlog is 5: a client opening its pool's connections at once would
    # see some of them dropped and retried a second later, as no real provider does.
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections_lock = threading.Lock()
        self._open: set[socket.socket] = set()
        #: TCP connections accepted so far: with keep-alive, far fewer than requests.
        self.connections = 0
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self.connections += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening and hang up every open connection.

        A kept-alive connection's (daemon) thread waits for the client's next request: without the
        hang-up, a client that keeps its connections would go on being answered by a stopped
        sandbox, and never see it go away.
        """
        with self._connections_lock:
            still_open = list(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.logger.exception("%s failed to answer %s", self.name, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    """A request handler that logs its request lines on the server's logger, at DEBUG."""

    server: SandboxServer
    # The status line and headers, then the body, go out in two writes: with Nagle's algorithm the
    # body waits for the client's (delayed, ~40 ms) ACK of the headers on every request after the
    # first of a kept-alive connection. Real APIs answer at once; so does the sandbox.
    disable_nagle_algorithm = True

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
    def connections(self) -> int:
        """TCP connections the sandbox has accepted since it started (a kept-alive connection
        carries many requests)."""
        return self._server.connections if self._server else 0

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

"""What the HTTP sandboxes (Twilio, Vonage, GoCardless, the webhook receiver) share: a threaded
server whose failures go to the sandbox's log rather than stderr, request lines at DEBUG (they carry
phone numbers and ids), serving and stopping, the posts a provider makes later, and the date."""

from __future__ import annotations

import contextlib
import http.client
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

#: ``http.client``'s limits on a header line and on the number of headers.
_MAX_LINE, _MAX_HEADERS = 65536, 100


def once_a_second(format_second: Callable[[int], str]) -> Callable[[], str]:
    """``format_second(now)`` for the current whole second, formatted once a second rather than on
    every response (a sandbox answering a benchmark formats the same date thousands of times)."""
    cache: dict[int, str] = {}

    def now() -> str:
        second = int(time.time())
        cached = cache.get(second)
        if cached is None:
            cached = format_second(second)
            cache.clear()
            cache[second] = cached
        return cached

    return now


#: The ``Date`` header of the current second.
_http_date_now = once_a_second(lambda second: formatdate(second, usegmt=True))


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
    # Set by http.server before ``parse_request``, and its buffer of response lines (untyped there).
    raw_requestline: bytes
    _headers_buffer: list[bytes]
    # The status line and headers, then the body, go out in two writes: with Nagle's algorithm the
    # body waits for the client's (delayed, ~40 ms) ACK of the headers on every request after the
    # first of a kept-alive connection. Real APIs answer at once; so does the sandbox.
    disable_nagle_algorithm = True

    def end_headers_and_write(self, body: bytes) -> None:
        """``end_headers()`` then ``body``, in one write: one system call per answer, not two."""
        self._headers_buffer.append(b"\r\n" + body)
        self.flush_headers()

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry phone numbers and ids in query strings: keep them out of INFO.
        if self.server.logger.isEnabledFor(logging.DEBUG):
            self.server.logger.debug("%s %s", self.address_string(), format % args)

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, formatted once a second rather than on every response."""
        if timestamp is not None:
            return formatdate(timestamp, usegmt=True)
        return _http_date_now()

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request`` with the headers read by a plain loop.

        The standard one hands them to the ``email`` package's parser, which was a fifth of a
        sandbox's CPU per request: a benchmark's sandbox shares the cores with the pipeline it
        measures (a real provider is another machine), so its cost is kept small. The request line,
        the limits (a line of 64 KiB, 100 headers) and keep-alive are as the standard one has them.
        """
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] not in ("HTTP/1.0", "HTTP/1.1"):
            return super().parse_request()  # anything unusual, and its errors, as the standard has it
        self.requestline = requestline
        self.command, self.path, self.request_version = words
        self.close_connection = words[2] != "HTTP/1.1" or self.protocol_version < "HTTP/1.1"
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        headers = http.client.HTTPMessage()
        last = ""
        for count in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            if count == _MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers")
                return False
            text = line.decode("iso-8859-1")
            if text[:1] in (" ", "\t") and last:  # an obsolete folded line continues the last header
                value = headers.get_all(last, [""])[-1]
                del headers[last]
                headers[last] = f"{value} {text.strip()}"
                continue
            name, colon, value = text.partition(":")
            if not colon:
                self.send_error(HTTPStatus.BAD_REQUEST, "Bad header line")
                return False
            last = name.strip()
            headers[last] = value.strip()
        self.headers = headers
        connection = headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = headers.get("Expect", "").lower()
        if expect == "100-continue" and self.protocol_version >= "HTTP/1.1" and words[2] == "HTTP/1.1":
            return bool(self.handle_expect_100())
        return True


class DelayedPosts:
    """What a provider posts back later (status callbacks, delivery receipts): each job is handed to
    ``post`` a fixed delay after it was queued, in the thread that runs ``run``. Every job waits the
    same delay, so the order they were queued in is the order they fall due."""

    def __init__(self, post: Callable[[str, str, str], None], what: str, logger: logging.Logger) -> None:
        self._post, self._what, self._logger = post, what, logger
        self._jobs: queue.SimpleQueue[tuple[float, str, str, str] | None] = queue.SimpleQueue()
        self._stopping = threading.Event()

    def put(self, delay: float, ident: str, url: str, status: str) -> None:
        """Post ``status`` of ``ident`` to ``url`` in ``delay`` seconds."""
        self._jobs.put((time.monotonic() + delay, ident, url, status))

    def run(self) -> None:
        """Post each job when it falls due, until ``close()``; what is still queued then is dropped."""
        while (job := self._jobs.get()) is not None:
            due, ident, url, status = job
            if self._stopping.wait(max(due - time.monotonic(), 0.0)):
                return
            try:
                self._post(ident, url, status)
            except Exception:  # one bad post must not end the thread
                self._logger.exception("%s %s for %s failed", self._what, status, ident)

    def close(self) -> None:
        """End ``run`` now, dropping the jobs not yet posted."""
        self._stopping.set()
        self._jobs.put(None)


class HttpSandbox:
    """A sandbox served by a ``SandboxServer`` on ``_host``:``_port`` (0: a free port): its address
    and the context manager; ``start()`` and ``stop()`` are the sandbox's own, and serve with
    ``_serve`` and ``_stop_serving``."""

    _host: str
    _port: int
    _server: SandboxServer | None
    _threads: list[threading.Thread]

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

    def _serve(self, server: SandboxServer, *beside: Callable[[], None]) -> None:
        """Serve ``server`` in a daemon thread, and run each of ``beside`` in a daemon thread of
        its own; returns at once (the port is bound already, so it accepts connections)."""
        self._server = server
        self._threads = [threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)]
        self._threads += [threading.Thread(target=run, daemon=True) for run in beside]
        for thread in self._threads:
            thread.start()

    def _stop_serving(self) -> None:
        """Stop serving and wait for the threads ``_serve`` started (stop what runs beside first)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in getattr(self, "_threads", []):
            thread.join(timeout=5)  # a post in flight is bounded by its own timeout
        self._threads = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

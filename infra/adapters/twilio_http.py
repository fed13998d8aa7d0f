"""A lean transport for the official ``twilio`` client: a ``twilio.http.HttpClient`` over
``http.client``, with connections kept alive.

twilio-python lets its caller hand it any ``HttpClient`` (its documented extension point); the
client still builds every request and parses every answer. Its default one goes through
``requests``, which per request builds a ``Request``, merges the session's settings, runs hooks,
guesses the text encoding and wraps urllib3, which wraps ``http.client``: about three quarters of
the CPU an SMS cost (0.7 of 0.9 ms). This one writes the request on a kept-alive
``http.client`` connection and reads the answer, nothing more.

Connections: one small pool per origin, shared by every thread, keeping at most ``maxsize`` idle
connections (last used, first reused); a thread that finds none idle opens one. Before a kept
connection is reused it is dropped if it has been idle longer than ``keepalive_idle`` seconds or
if the server has closed it meanwhile (it reads as ready: end of file): a server closes idle
connections on its own schedule, and a request that meets a connection closing under it cannot
know whether the provider took it.

Never a retry or a redirect here: a request goes out once per call, so whether a message may be
sent again is decided above it. What failed is sorted here, the one place that knows how far the
request got: ``NotConnected`` (no connection, or no TLS session, could be made: certainly not
sent), ``NoAnswer`` (the request may have gone out: ambiguous), ``TransportClosed`` (after
``close()``: not sent). A proxy named by the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
``NO_PROXY``) is used as ``requests`` would: a ``CONNECT`` tunnel for HTTPS, the absolute URL for
HTTP; it is read once, as is the CA bundle (``REQUESTS_CA_BUNDLE``, else certifi's).
"""

from __future__ import annotations

import http.client
import json
import os
import select
import ssl
import threading
import time
from base64 import b64encode
from urllib.parse import unquote, urlencode, urlsplit

import certifi
from requests.utils import get_environ_proxies
from twilio.http import HttpClient
from twilio.http.response import Response

from infra.errors import TransientProviderError

#: What twilio sends as JSON rather than as a form.
_JSON_TYPES = frozenset({"application/json", "application/scim+json"})


class TransportClosed(TransientProviderError):
    """The transport was closed (shutting down): the request was not sent, so a clean transient
    failure, retried after the restart."""


class NotConnected(TransientProviderError):
    """No connection (or TLS session) to the provider could be made: the request was not sent."""


class NoAnswer(TransientProviderError):
    """The connection failed, or the provider did not answer in time, once the request may have
    gone out: the provider may have acted on it (ambiguous)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, accepted_unknown=True)


def _basic(user: str, password: str) -> str:
    return "Basic " + b64encode(f"{user}:{password}".encode()).decode("ascii")


def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle kept connection reads as ready: the server closed it (or sent what it
    should not have); either way it is not reused."""
    sock = conn.sock
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Origin:
    """Kept-alive connections to one ``scheme://host:port``, directly or through a proxy."""

    def __init__(
        self,
        scheme: str,
        netloc: str,
        *,
        proxy: str | None,
        context: ssl.SSLContext | None,
        maxsize: int,
        keepalive_idle: float,
    ) -> None:
        self.scheme = scheme
        self._netloc = netloc
        self._context = context
        self._maxsize = maxsize
        self._keepalive_idle = keepalive_idle
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._proxy: tuple[str, int] | None = None
        #: Headers every request carries (a proxy's credentials, for plain HTTP through it).
        self.headers: dict[str, str] = {}
        self._tunnel_headers: dict[str, str] = {}
        #: Whether the request target is the absolute URL (plain HTTP through a proxy).
        self.absolute = False
        if proxy:
            found = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            self._proxy = (str(found.hostname), found.port or 80)
            auth = (
                {"Proxy-Authorization": _basic(unquote(found.username), unquote(found.password or ""))}
                if found.username
                else {}
            )
            if scheme == "https":
                self._tunnel_headers = auth
            else:
                self.headers, self.absolute = auth, True

    def take(self) -> http.client.HTTPConnection:
        """An idle kept connection still fit for use, else a new one (not connected yet)."""
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, since = self._idle.pop()
            if now - since <= self._keepalive_idle and not _closed_by_peer(conn):
                return conn
            conn.close()
        return self._new()

    def give_back(self, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose last exchange ended cleanly, if there is room."""
        with self._lock:
            if not self._closed and len(self._idle) < self._maxsize:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection, and every one given back from now on."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def _new(self) -> http.client.HTTPConnection:
        host, port = self._proxy or (self._netloc, None)
        if self.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, context=self._context)
            if self._proxy:
                conn.set_tunnel(self._netloc, headers=self._tunnel_headers)
            return conn
        return http.client.HTTPConnection(host, port)


class LeanHttpClient(HttpClient):
    """twilio's ``HttpClient`` over kept-alive ``http.client`` connections: see the module
    docstring.

    ``maxsize`` idle connections are kept per origin (the callers' concurrency); ``timeout``
    bounds the connection and each read. The last response of each thread is kept
    (``last_response``), so the caller can read a ``Retry-After`` header, which twilio's
    exceptions do not carry.
    """

    def __init__(self, *, base_url: str, timeout: float, maxsize: int, keepalive_idle: float) -> None:
        super().__init__(logger=None, is_async=False, timeout=timeout)
        self._base_url = base_url
        self._maxsize = maxsize
        self._keepalive_idle = keepalive_idle
        ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
        self._context = (
            ssl.create_default_context(capath=ca)
            if os.path.isdir(ca)
            else ssl.create_default_context(cafile=ca)
        )
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._origins_lock = threading.Lock()
        self._auth: dict[tuple[str, str], str] = {}
        self._local = threading.local()
        self._closed = False

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """One HTTP request, sent once (no retry, no redirect followed); its response."""
        if self._closed:
            raise TransportClosed("the twilio adapter is closed; not sent")
        self._local.response = None
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        scheme, _, rest = url.partition("://")
        netloc, _, path = rest.partition("/")
        origin = self._origin(scheme.lower(), netloc)
        target = url if origin.absolute else f"/{path}"
        if params:
            target = f"{target}{'&' if '?' in target else '?'}{urlencode(params, doseq=True)}"
        headers = {**headers, **origin.headers} if headers else dict(origin.headers)
        if auth is not None:
            headers["Authorization"] = self._basic(auth)
        body: bytes | None = None
        if data:
            if headers.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn = origin.take()
        conn.timeout = timeout
        if conn.sock is None:
            try:
                conn.connect()
            except OSError as exc:  # refused, unreachable, unresolvable, timed out, TLS refused
                conn.close()
                raise NotConnected(f"could not connect to {netloc}; not sent: {exc!r}") from None
        else:
            conn.sock.settimeout(timeout)
        try:
            conn.request(method.upper(), target, body, headers)
            answer = conn.getresponse()
            content = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            what = "did not answer in time" if isinstance(exc, TimeoutError) else "dropped the connection"
            raise NoAnswer(f"{netloc} {what}; it may have acted on the request: {exc!r}") from None
        if answer.will_close:
            conn.close()
        else:
            origin.give_back(conn)
        response = Response(answer.status, content.decode("utf-8", "replace"), answer.headers)
        self._local.response = response
        return response

    def last_response(self) -> Response | None:
        """This thread's last response, if its last request got one."""
        response: Response | None = getattr(self._local, "response", None)
        return response

    def close(self) -> None:
        """Close every kept connection; later requests raise ``TransportClosed``."""
        self._closed = True
        with self._origins_lock:
            origins = list(self._origins.values())
        for origin in origins:
            origin.close()

    def _origin(self, scheme: str, netloc: str) -> _Origin:
        key = (scheme, netloc)
        origin = self._origins.get(key)
        if origin is None:
            with self._origins_lock:
                origin = self._origins.get(key)
                if origin is None:
                    proxies = get_environ_proxies(f"{scheme}://{netloc}")
                    origin = self._origins[key] = _Origin(
                        scheme,
                        netloc,
                        proxy=proxies.get(scheme) or proxies.get("all"),
                        context=self._context if scheme == "https" else None,
                        maxsize=self._maxsize,
                        keepalive_idle=self._keepalive_idle,
                    )
        return origin

    def _basic(self, auth: tuple[str, str]) -> str:
        header = self._auth.get(auth)
        if header is None:
            header = self._auth[auth] = _basic(*auth)
        return header

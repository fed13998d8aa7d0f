"""A lean transport for the official ``twilio`` client: a ``twilio.http.HttpClient`` over urllib3.

twilio-python lets its caller hand it any ``HttpClient`` (its documented extension point); the
client still builds every request and parses every answer. Its default one goes through
``requests``, which per request builds a ``Request``, merges the session's settings, runs hooks,
guesses the text encoding and wraps urllib3's answer: about two thirds of the CPU an SMS cost
(0.6 of 0.9 ms). This one hands the request straight to urllib3, which ``requests`` uses
underneath anyway, so the connection handling (and how a dropped kept-alive connection is noticed)
is the same.

Connections: one pool per host, shared by every thread (urllib3's pools are thread-safe), keeping
at most ``maxsize`` connections alive; a thread that finds none idle opens one, used once and
closed. A connection idle longer than ``keepalive_idle`` seconds is closed before it is used again
rather than reused: a server closes idle connections on its own schedule, and a request that meets
a connection closing under it cannot know whether the provider took it.

Never a retry or a redirect here: a ``POST`` goes out once per call, so whether a message may be
sent again is decided above (``infra.adapters.sms``). Failures are urllib3's own exceptions,
unwrapped (``NewConnectionError`` and ``ConnectTimeoutError`` before anything was sent,
``ReadTimeoutError`` and ``ProtocolError`` after it may have been), sorted by
``infra.adapters.sms``; after ``close()``, ``TransportClosed``, a clean transient failure.
"""

from __future__ import annotations

import json
import os
import threading
import time
from base64 import b64encode
from typing import Any
from urllib.parse import urlencode

import certifi
import urllib3
from requests.utils import get_environ_proxies
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from infra.errors import TransientProviderError

#: What twilio sends as JSON rather than as a form.
_JSON_TYPES = frozenset({"application/json", "application/scim+json"})
_NO_PARAMS: dict[str, object] = {}


class TransportClosed(TransientProviderError):
    """The transport was closed (shutting down): the request was not sent, so a clean transient
    failure, retried after the restart."""


class _TimedHTTPConnection(HTTPConnection):
    #: ``time.monotonic()`` when it last went back to its pool, idle.
    idle_since: float | None = None


class _TimedHTTPSConnection(HTTPSConnection):
    idle_since: float | None = None


def _idle_too_long(conn: Any, limit: float) -> bool:
    since: float | None = getattr(conn, "idle_since", None)
    return since is not None and time.monotonic() - since > limit


class _KeptHTTPPool(HTTPConnectionPool):
    """A pool that closes a connection idle longer than ``keepalive_idle`` before reusing it."""

    ConnectionCls = _TimedHTTPConnection
    keepalive_idle = 30.0

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        if _idle_too_long(conn, self.keepalive_idle):
            conn.close()  # a closed connection reconnects on its next request
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)


class _KeptHTTPSPool(HTTPSConnectionPool):
    """``_KeptHTTPPool`` for HTTPS."""

    ConnectionCls = _TimedHTTPSConnection
    keepalive_idle = 30.0

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        if _idle_too_long(conn, self.keepalive_idle):
            conn.close()
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)


def _pool_classes(keepalive_idle: float) -> dict[str, type[HTTPConnectionPool]]:
    # Subclasses carrying this transport's idle limit (urllib3 builds the pools itself).
    attrs = {"keepalive_idle": keepalive_idle}
    return {
        "http": type("KeptHTTPPool", (_KeptHTTPPool,), attrs),
        "https": type("KeptHTTPSPool", (_KeptHTTPSPool,), attrs),
    }


def _manager(base_url: str, maxsize: int, keepalive_idle: float) -> urllib3.PoolManager:
    """A pool manager for ``base_url``, through the proxy the environment names for it, if any.

    The environment (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, …) is read once, as
    ``requests`` would on every request: every request of the client goes to the one base URL.
    """
    proxies = get_environ_proxies(base_url)
    scheme = base_url.split("://", 1)[0].lower()
    proxy = proxies.get(scheme) or proxies.get("all")
    ca_certs = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    kwargs: dict[str, Any] = {"maxsize": maxsize, "block": False, "ca_certs": ca_certs}
    manager: urllib3.PoolManager
    if proxy:
        manager = urllib3.ProxyManager(proxy, num_pools=4, **kwargs)
    else:
        manager = urllib3.PoolManager(num_pools=4, **kwargs)
    manager.pool_classes_by_scheme = _pool_classes(keepalive_idle)
    return manager


class LeanHttpClient(HttpClient):
    """twilio's ``HttpClient`` over a urllib3 pool manager: see the module docstring.

    ``maxsize`` connections are kept alive (the callers' concurrency); ``timeout`` bounds the
    connection and each read. The last response of each thread is kept (``last_response``), so
    the caller can read a ``Retry-After`` header, which twilio's exceptions do not carry.
    """

    def __init__(self, *, base_url: str, timeout: float, maxsize: int, keepalive_idle: float) -> None:
        super().__init__(logger=None, is_async=False, timeout=timeout)
        self._manager = _manager(base_url, maxsize, keepalive_idle)
        self._timeouts: dict[float, urllib3.Timeout] = {}
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
        headers = dict(headers) if headers else {}
        if auth is not None:
            headers["Authorization"] = self._basic(auth)
        body: bytes | None = None
        if data:
            if headers.get("Content-Type") in _JSON_TYPES:
                body = json.dumps(data).encode()
            else:
                body = urlencode(data, doseq=True).encode()
                headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        answer = self._manager.urlopen(
            method.upper(),
            url,
            body=body,
            headers=headers,
            timeout=self._timeout(timeout),
            retries=False,
            redirect=False,
            preload_content=True,
        )
        response = Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)
        self._local.response = response
        return response

    def last_response(self) -> Response | None:
        """This thread's last response, if its last request got one."""
        response: Response | None = getattr(self._local, "response", None)
        return response

    def close(self) -> None:
        """Close every kept connection; later requests raise ``TransportClosed``."""
        self._closed = True
        self._manager.clear()

    def _basic(self, auth: tuple[str, str]) -> str:
        header = self._auth.get(auth)
        if header is None:
            token = b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            header = self._auth[auth] = f"Basic {token}"
        return header

    def _timeout(self, seconds: float | None) -> urllib3.Timeout:
        if seconds is None:
            seconds = self.timeout
        elif seconds <= 0:
            raise ValueError(seconds)
        key = float(seconds) if seconds is not None else 0.0
        found = self._timeouts.get(key)
        if found is None:
            found = self._timeouts[key] = urllib3.Timeout(connect=seconds, read=seconds)
        return found

"""The Twilio adapter's lean transport (``infra.adapters.twilio_http``) against real sockets.

What ``requests`` used to settle for us, checked here: a request is sent once (never retried by
the transport), what failed before any connection is a clean "not sent", what failed after the
request may have gone out is ambiguous, ``Retry-After`` reaches the error, and the official
client's list and fetch calls (query strings, paging) still work over it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from infra.adapters.sms import SentSms, TwilioSms
from infra.adapters.twilio_http import TransportClosed
from infra.errors import TransientProviderError
from tests.conftest import wait_for
from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

SID = "AC" + "fedcba9876543210" * 2
TOKEN = "sandbox-transport-token"
SENDER = "+15005550006"
TO = "+358401234567"


@pytest.fixture
def sandbox() -> Iterator[TwilioSandbox]:
    with TwilioSandbox(SandboxConfig(SID, TOKEN)) as running:
        yield running


class HangUp:
    """A server that reads each request whole and closes the connection without a word, as a
    provider's load balancer may after passing the request on; it counts the requests."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.lower().split(b"\r\n")
                        if line.startswith(b"content-length")
                    ),
                    0,
                )
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests += 1

    def close(self) -> None:
        self._server.close()


def _send(adapter: TwilioSms) -> SentSms:
    return adapter.send(to=TO, sender=SENDER, body="Lasku 1", status_callback=None)


def test_no_one_listening_is_a_clean_not_sent() -> None:
    with socket.socket() as probe:  # a free port, closed again: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = TwilioSms(SID, TOKEN, f"http://127.0.0.1:{port}", 2.0, concurrency=1)
    try:
        with pytest.raises(TransientProviderError) as refused:
            _send(adapter)
    finally:
        adapter.close()
    assert not refused.value.accepted_unknown
    assert "not sent" in str(refused.value)


def test_a_connection_dropped_after_the_request_went_out_is_ambiguous_and_never_resent() -> None:
    server = HangUp()
    adapter = TwilioSms(SID, TOKEN, f"http://127.0.0.1:{server.port}", 2.0, concurrency=1)
    try:
        with pytest.raises(TransientProviderError) as dropped:
            _send(adapter)
        assert dropped.value.accepted_unknown
        assert server.requests == 1  # the transport did not try again on its own
    finally:
        adapter.close()
        server.close()


def test_no_answer_in_time_is_ambiguous(sandbox: TwilioSandbox) -> None:
    sandbox.faults.delay_seconds = 2.0
    adapter = TwilioSms(SID, TOKEN, sandbox.url, 0.3, concurrency=1)
    try:
        with pytest.raises(TransientProviderError) as slow:
            _send(adapter)
    finally:
        adapter.close()
    assert slow.value.accepted_unknown
    wait_for(lambda: sandbox.faults.in_flight == 0, timeout=10, what="the slow answer given")
    assert sandbox.faults.state()["requests"] == 1


def test_a_429_carries_its_retry_after_and_the_next_send_goes_out(sandbox: TwilioSandbox) -> None:
    sandbox.faults.fail_next(1, 429, 20429, retry_after=7)
    adapter = TwilioSms(SID, TOKEN, sandbox.url, 2.0, concurrency=1)
    try:
        with pytest.raises(TransientProviderError) as limited:
            _send(adapter)
        assert (limited.value.status, limited.value.code, limited.value.retry_after) == (429, 20429, 7.0)
        assert not limited.value.accepted_unknown
        assert isinstance(_send(adapter), SentSms)
    finally:
        adapter.close()
    assert sandbox.connections == 1  # the 429's connection was kept and reused


def test_list_and_fetch_walk_pages_and_query_strings_over_the_transport(sandbox: TwilioSandbox) -> None:
    adapter = TwilioSms(SID, TOKEN, sandbox.url, 2.0, concurrency=1)
    since = datetime.now(UTC)
    try:
        sent = [
            adapter.send(to=TO, sender=SENDER, body=f"Lasku {i}", status_callback=None) for i in range(120)
        ]
        adapter.send(to="+358409999999", sender=SENDER, body="Lasku 7", status_callback=None)
        # More than one page of 100: the client follows the next page's URL.
        assert adapter.find_sent(to=TO, body="Lasku 7", since=since) == sent[7].provider_id
        assert adapter.find_sent(to=TO, body="Lasku 119", since=since) == sent[119].provider_id
        assert adapter.find_sent(to=TO, body="never sent", since=since) is None
        assert adapter.fetch_status(sent[0].provider_id)[0] in {"queued", "sent", "delivered"}
    finally:
        adapter.close()


def test_after_close_nothing_is_sent_and_that_is_certain(sandbox: TwilioSandbox) -> None:
    adapter = TwilioSms(SID, TOKEN, sandbox.url, 2.0, concurrency=2)
    adapter.close()
    with pytest.raises(TransportClosed) as closed:
        _send(adapter)
    assert not closed.value.accepted_unknown
    with pytest.raises(TransientProviderError):
        adapter.fetch_status("SM" + "0" * 32)
    assert sandbox.faults.state()["requests"] == 0

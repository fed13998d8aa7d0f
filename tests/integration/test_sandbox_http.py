"""The sandboxes' own request parsing (``tooling.sandboxes.http.SandboxHandler.parse_request``),
spoken to over a raw socket: what the standard parser accepts it accepts (a folded line as the RFC
reads it), and what it refuses it refuses with the same status, without taking the sandbox down."""

from __future__ import annotations

import base64
import logging
import socket
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import pytest

from tests.conftest import wait_for
from tooling.sandboxes import http as sandbox_http
from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

SID = "AC" + "c" * 32
TOKEN = "sandbox-http-token"  # the local sandbox's, not a real secret
PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
AUTH = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()


@pytest.fixture
def sandbox() -> Iterator[TwilioSandbox]:
    with TwilioSandbox(SandboxConfig(SID, TOKEN)) as running:
        yield running


def _exchange(
    sandbox: TwilioSandbox, raw: bytes, answers: int = 1
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``raw`` on one connection; read ``answers`` responses (status, headers, body), or as
    many as come before the sandbox closes the connection."""
    out: list[tuple[int, dict[str, str], bytes]] = []
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as conn:
        conn.sendall(raw)
        reader = conn.makefile("rb")
        for _ in range(answers):
            status_line = reader.readline()
            if not status_line:
                break
            headers: dict[str, str] = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("iso-8859-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = reader.read(int(headers.get("content-length", "0")))
            out.append((int(status_line.split()[1]), headers, body))
    return out


def _create(to: str, *, version: str = "HTTP/1.1", extra: bytes = b"", auth: bytes | None = None) -> bytes:
    body = urlencode({"To": to, "From": "+15005550006", "Body": "hello"}).encode()
    auth_header = auth if auth is not None else f"Authorization: {AUTH}\r\n".encode()
    return (
        f"POST {PATH} {version}\r\nHost: sandbox\r\n".encode()
        + auth_header
        + extra
        + f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def test_two_requests_on_one_kept_alive_connection_are_both_answered(sandbox: TwilioSandbox) -> None:
    answers = _exchange(sandbox, _create("+447700900001") + _create("+447700900002"), answers=2)
    assert [status for status, _, _ in answers] == [201, 201]
    assert [m["to"] for m in sandbox.messages()] == ["+447700900001", "+447700900002"]
    assert sandbox.connections == 1
    # The Date header is a real HTTP date, formatted once a second but still now's.
    assert parsedate_to_datetime(answers[0][1]["date"]).tzinfo is not None


def test_http_1_0_is_answered_then_the_connection_is_closed(sandbox: TwilioSandbox) -> None:
    answers = _exchange(sandbox, _create("+447700900003", version="HTTP/1.0") * 2, answers=2)
    assert [status for status, _, _ in answers] == [201]
    assert len(sandbox.messages()) == 1


def test_a_folded_header_line_continues_the_header_before_it(sandbox: TwilioSandbox) -> None:
    # RFC 9112 §5.2: an obsolete line folding is replaced by a space before the value is read (the
    # standard parser kept the line break in the value, and refused these credentials).
    scheme, _, credentials = AUTH.partition(" ")
    folded = f"Authorization: {scheme}\r\n {credentials}\r\n".encode()
    [(status, _, _)] = _exchange(sandbox, _create("+447700900004", auth=folded))
    assert status == 201


def test_header_names_are_matched_whatever_their_case(sandbox: TwilioSandbox) -> None:
    lower = f"authorization: {AUTH}\r\n".encode()
    [(status, _, _)] = _exchange(sandbox, _create("+447700900005", auth=lower))
    assert status == 201


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        (b"".join(f"X-Many-{i}: {i}\r\n".encode() for i in range(101)), 431),  # too many headers
        (b"X-Long: " + b"a" * 70_000 + b"\r\n", 431),  # one line too long
        (b"no colon on this line\r\n", 400),
    ],
    ids=["101 headers", "a 70 KB line", "a line without a colon"],
)
def test_bad_headers_are_refused_and_the_sandbox_serves_on(
    sandbox: TwilioSandbox, extra: bytes, status: int
) -> None:
    answers = _exchange(sandbox, _create("+447700900006", extra=extra))
    assert [code for code, _, _ in answers] == [status]
    assert sandbox.messages() == []
    assert [code for code, _, _ in _exchange(sandbox, _create("+447700900007"))] == [201]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"POST /x HTTP/2.0\r\n\r\n", 505),
        (b"POST /x HTTP/1.x\r\n\r\n", 400),
        (b"\xff\xfe\x00 binary \x01\r\n\r\n", 400),
        (b"POST /x HTTP/1.1 extra\r\n\r\n", 400),
    ],
    ids=["HTTP/2.0", "a bad version", "binary", "four words"],
)
def test_an_unusual_request_line_is_answered_as_the_standard_parser_does(
    sandbox: TwilioSandbox, request_line: bytes, status: int
) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=10) as conn:
        conn.sendall(request_line)
        answer = b"".join(iter(lambda: conn.recv(65536), b""))  # the sandbox closes after it
    # The standard parser answers a request line it cannot read as HTTP/0.9, an error page
    # without a status line (http.server's way): the code is in the page.
    assert f"Error code: {status}".encode() in answer
    assert [code for code, _, _ in _exchange(sandbox, _create("+447700900008"))] == [201]


# --- What the sandboxes share beside the parser: the per-second date and the delayed posts ---


def test_once_a_second_formats_each_second_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.2, 100.9, 101.0, 101.5])
    monkeypatch.setattr(sandbox_http.time, "time", lambda: next(clock))
    formatted: list[int] = []

    def format_second(second: int) -> str:
        formatted.append(second)
        return f"second {second}"

    now = sandbox_http.once_a_second(format_second)
    assert [now(), now(), now(), now()] == ["second 100", "second 100", "second 101", "second 101"]
    assert formatted == [100, 101]


def test_delayed_posts_go_in_order_and_one_that_fails_does_not_stop_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    posted: list[tuple[str, str, str]] = []

    def post(ident: str, url: str, status: str) -> None:
        if ident == "bad":
            raise ValueError("the receiver's URL is not one")
        posted.append((ident, url, status))

    posts = sandbox_http.DelayedPosts(post, "status callback", logging.getLogger("test.delayed"))
    runner = threading.Thread(target=posts.run, daemon=True)
    runner.start()
    for ident in ("SM1", "bad", "SM2"):
        posts.put(0.01, ident, "http://receiver.example/cb", "sent")
    wait_for(lambda: len(posted) == 2, timeout=10, what="both good posts")
    posts.close()
    runner.join(timeout=5)
    assert not runner.is_alive()
    assert [ident for ident, _url, _status in posted] == ["SM1", "SM2"]
    assert "status callback sent for bad failed" in caplog.text


def test_closing_delayed_posts_drops_what_is_not_due_yet() -> None:
    posted: list[str] = []
    posts = sandbox_http.DelayedPosts(
        lambda ident, _url, _status: posted.append(ident), "receipt", logging.getLogger("test.delayed")
    )
    runner = threading.Thread(target=posts.run, daemon=True)
    runner.start()
    posts.put(3600, "later", "http://receiver.example/dlr", "delivered")
    posts.close()
    runner.join(timeout=5)
    assert not runner.is_alive()  # it did not wait the hour
    assert posted == []

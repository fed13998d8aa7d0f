"""The Twilio sandbox, driven by the official ``twilio`` client as herald's SMS worker drives it."""

from __future__ import annotations

import base64
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.conftest import wait_for as wait_until
from tests.integration.local_http import PostRecorder, recording, serving
from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox, num_segments

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "sandbox-test-token"
SENDER = "+15005550006"
T = TypeVar("T")


@pytest.fixture
def sandbox() -> Iterator[TwilioSandbox]:
    with TwilioSandbox(SandboxConfig(SID, TOKEN, callback_delay_seconds=0.05)) as running:
        yield running


@pytest.fixture
def client(sandbox: TwilioSandbox) -> Client:
    twilio = Client(SID, TOKEN)
    twilio.api.base_url = sandbox.url
    return twilio


class Receiver(PostRecorder):
    """A local webhook endpoint that records every POST and answers ``status``."""

    def __init__(self) -> None:
        super().__init__()
        self.status = 204

    def record(self, request: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        return {
            "path": request.path,
            "params": dict(parse_qsl(body.decode())),
            "signature": request.headers.get("X-Twilio-Signature"),
        }

    def answer(self) -> int:
        return self.status

    def statuses(self) -> list[str]:
        return [post["params"]["MessageStatus"] for post in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with recording(Receiver()) as recorder:
        yield recorder


def _refused_port() -> int:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = int(probe.server_address[1])
    probe.server_close()
    return port


def _raw_get(url: str, auth: bool = True) -> tuple[int, dict[str, str], Any]:
    """GET a sandbox URL without the twilio client, to see exactly what goes over the wire."""
    assert url.startswith("http://127.0.0.1:")
    request = urllib.request.Request(url)  # noqa: S310 - a local http URL, checked above
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_create_answers_a_queued_message_in_twilios_shape_and_captures_it(
    sandbox: TwilioSandbox, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="herald.sandbox.twilio"):
        message = client.messages.create(to="+358401234567", from_=SENDER, body="Lasku 1001 erääntyy")

    assert message.sid.startswith("SM")
    assert len(message.sid) == 34
    assert message.status == "queued"
    assert message.account_sid == SID
    assert message.direction == "outbound-api"
    assert message.num_segments == "1"
    assert message.date_sent is None
    assert message.date_created is not None
    assert message.date_created.tzinfo is not None
    (captured,) = sandbox.messages()
    assert captured["sid"] == message.sid
    assert captured["to"] == "+358401234567"
    assert captured["from"] == SENDER
    assert captured["body"] == "Lasku 1001 erääntyy"
    base = f"/2010-04-01/Accounts/{SID}/Messages/{message.sid}"
    assert captured["uri"] == f"{base}.json"
    assert captured["subresource_uris"] == {"media": f"{base}/Media.json"}
    assert captured["status_callback"] is None
    assert captured["date_created"].endswith(" +0000")
    assert parsedate_to_datetime(captured["date_created"]) == message.date_created
    # Logs at INFO never carry the whole number or the text.
    assert "+358401234567" not in caplog.text
    assert "Lasku" not in caplog.text


def test_messages_is_a_snapshot(sandbox: TwilioSandbox, client: Client) -> None:
    client.messages.create(to="+358401234567", from_=SENDER, body="one")
    sandbox.messages()[0]["body"] = "changed"
    assert sandbox.messages()[0]["body"] == "one"


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_numbers_are_refused_with_twilios_codes_and_not_captured(
    sandbox: TwilioSandbox, client: Client, to: str, code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(to=to, from_=SENDER, body="hello")
    assert raised.value.status == 400
    assert raised.value.code == code
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"to": "", "from_": SENDER, "body": "hi"}, 21604),
        ({"to": "+358401234567", "body": "hi"}, 21603),
        ({"to": "+358401234567", "from_": SENDER}, 21602),
    ],
)
def test_missing_fields_are_refused(
    sandbox: TwilioSandbox, client: Client, fields: dict[str, str], code: int
) -> None:
    with pytest.raises(TwilioRestException) as raised:
        client.messages.create(**fields)
    assert (raised.value.status, raised.value.code) == (400, code)
    assert sandbox.messages() == []


def test_a_messaging_service_stands_in_for_from(sandbox: TwilioSandbox, client: Client) -> None:
    message = client.messages.create(to="+358401234567", messaging_service_sid="MG" + "0" * 32, body="hi")
    assert message.messaging_service_sid == "MG" + "0" * 32


@pytest.mark.parametrize(("sid", "token"), [(SID, "wrong-token"), ("AC" + "f" * 32, TOKEN)])
def test_wrong_credentials_are_refused_with_20003(sandbox: TwilioSandbox, sid: str, token: str) -> None:
    intruder = Client(sid, token)
    intruder.api.base_url = sandbox.url
    with pytest.raises(TwilioRestException) as raised:
        intruder.messages.create(to="+358401234567", from_=SENDER, body="hi")
    assert (raised.value.status, raised.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException) as fetched:
        intruder.messages("SM" + "0" * 32).fetch()
    assert (fetched.value.status, fetched.value.code) == (401, 20003)
    # The client's list() does not raise TwilioRestException for an error page, only TwilioException.
    with pytest.raises(TwilioException):
        intruder.messages.list()
    assert sandbox.messages() == []


def test_list_filters_by_to_and_walks_every_page(sandbox: TwilioSandbox, client: Client) -> None:
    wanted, other = "+358401111111", "+358402222222"
    sids = [client.messages.create(to=wanted, from_=SENDER, body=f"n{i}").sid for i in range(120)]
    for i in range(7):
        client.messages.create(to=other, from_=SENDER, body=f"o{i}")

    listed = client.messages.list(to=wanted, page_size=50)
    assert [m.sid for m in listed] == sids[::-1]  # newest first, nothing lost or repeated
    assert len(client.messages.list(to=wanted, limit=70)) == 70
    assert len(client.messages.list(to=wanted, limit=70, page_size=50)) == 70
    assert len(list(client.messages.stream(page_size=30))) == 127
    assert {m.to for m in client.messages.list(to=other)} == {other}
    assert client.messages.list(to="+358409999999") == []

    first = client.messages.page(to=wanted, page_size=50)
    second = first.next_page()
    assert second is not None
    third = second.next_page()
    assert third is not None
    assert [len(list(page)) for page in (first, second, third)] == [50, 50, 20]
    assert third.next_page() is None


def test_paging_does_not_repeat_when_messages_arrive_between_pages(
    sandbox: TwilioSandbox, client: Client
) -> None:
    sids = [client.messages.create(to="+358401111111", from_=SENDER, body=f"n{i}").sid for i in range(5)]
    first = client.messages.page(page_size=2)
    seen = [m.sid for m in first]
    client.messages.create(to="+358401111111", from_=SENDER, body="late")
    page = first.next_page()
    while page is not None:
        seen += [m.sid for m in page]
        page = page.next_page()
    assert seen == sids[::-1]


def test_list_filters_by_from(sandbox: TwilioSandbox, client: Client) -> None:
    client.messages.create(to="+358401111111", from_=SENDER, body="a")
    client.messages.create(to="+358401111111", from_="+15005550007", body="b")
    assert [m.body for m in client.messages.list(from_="+15005550007")] == ["b"]


def test_list_filters_by_date_sent(sandbox: TwilioSandbox, client: Client) -> None:
    now = datetime.now(UTC)
    client.messages.create(to="+358401111111", from_=SENDER, body="a")
    client.messages.create(to="+358401111111", from_=SENDER, body="b")

    assert len(client.messages.list(date_sent_after=now - timedelta(minutes=1))) == 2
    assert client.messages.list(date_sent_after=now + timedelta(days=1)) == []
    assert client.messages.list(date_sent_before=now - timedelta(days=1)) == []
    assert len(client.messages.list(date_sent_before=now + timedelta(minutes=1))) == 2
    assert len(client.messages.list(date_sent=now)) == 2
    # Strings go through as they are: a bare date compares whole days, inclusively.
    assert len(client.messages.list(date_sent_after=now.date().isoformat())) == 2
    assert len(client.messages.list(to="+358401111111", date_sent_after="2000-01-01", limit=1)) == 1


def test_an_unparseable_date_is_a_400(sandbox: TwilioSandbox) -> None:
    status, _, body = _raw_get(f"{sandbox.url}/2010-04-01/Accounts/{SID}/Messages.json?DateSent%3E=soon")
    assert status == 400
    assert body["status"] == 400
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"


def test_a_raw_plus_in_the_query_string_is_part_of_the_number(sandbox: TwilioSandbox, client: Client) -> None:
    client.messages.create(to="+358401111111", from_=SENDER, body="a")
    url = f"{sandbox.url}/2010-04-01/Accounts/{SID}/Messages.json?To=+358401111111"
    status, headers, body = _raw_get(url)
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert [m["to"] for m in body["messages"]] == ["+358401111111"]
    assert (body["page"], body["page_size"], body["start"], body["end"]) == (0, 50, 0, 0)
    assert (body["next_page_uri"], body["previous_page_uri"]) == (None, None)


def test_fetch_one_by_sid(sandbox: TwilioSandbox, client: Client) -> None:
    sent = client.messages.create(to="+358401234567", from_=SENDER, body="fetch me")
    fetched = client.messages(sent.sid).fetch()
    assert (fetched.sid, fetched.body, fetched.to) == (sent.sid, "fetch me", "+358401234567")

    with pytest.raises(TwilioRestException) as raised:
        client.messages("SM" + "0" * 32).fetch()
    assert (raised.value.status, raised.value.code) == (404, 20404)


def test_unknown_paths_answer_a_twilio_shaped_404(sandbox: TwilioSandbox) -> None:
    status, headers, body = _raw_get(f"{sandbox.url}/2010-04-01/Accounts/{SID}/Calls.json", auth=False)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["status"] == 404


def test_status_callbacks_are_signed_and_move_the_message_to_delivered(
    sandbox: TwilioSandbox, client: Client, receiver: Receiver
) -> None:
    url = f"{receiver.base}/twilio/status?notification=42"
    sent = client.messages.create(to="+358401234567", from_=SENDER, body="hi", status_callback=url)
    assert sandbox.messages()[0]["status_callback"] == url

    wait_until(lambda: len(receiver.posts) >= 2, what="sent and delivered callbacks")
    assert receiver.statuses() == ["sent", "delivered"]
    for post in receiver.posts:
        params = post["params"]
        assert post["path"] == "/twilio/status?notification=42"
        assert params["MessageSid"] == params["SmsSid"] == sent.sid
        assert params["AccountSid"] == SID
        assert (params["From"], params["To"]) == (SENDER, "+358401234567")
        assert params["SmsStatus"] == params["MessageStatus"]
        assert params["ApiVersion"] == "2010-04-01"
        assert RequestValidator(TOKEN).validate(url, params, post["signature"]) is True
        assert RequestValidator("not-the-token").validate(url, params, post["signature"]) is False

    fetched = client.messages(sent.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.date_sent is not None


def test_a_failing_callback_is_dropped_and_the_sandbox_carries_on(
    sandbox: TwilioSandbox, client: Client, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    refused = f"http://127.0.0.1:{_refused_port()}/status"
    with caplog.at_level(logging.WARNING, logger="herald.sandbox.twilio"):
        first = client.messages.create(to="+358401234567", from_=SENDER, body="a", status_callback=refused)
        wait_until(
            lambda: client.messages(first.sid).fetch().status == "delivered", what="status to move on anyway"
        )
        receiver.status = 500
        client.messages.create(to="+358401234567", from_=SENDER, body="b", status_callback=receiver.base)
        # Two callbacks each for the refused URL and for the receiver answering 500.
        wait_until(lambda: sum("dropped" in r.getMessage() for r in caplog.records) == 4, what="4 drops")
    assert len(receiver.posts) == 2

    receiver.status = 200
    ok = client.messages.create(to="+358401234567", from_=SENDER, body="c", status_callback=receiver.base)
    wait_until(lambda: receiver.statuses()[2:] == ["sent", "delivered"], what="callbacks after failures")
    assert receiver.posts[-1]["params"]["MessageSid"] == ok.sid
    assert len(sandbox.messages()) == 3


def test_no_callback_means_no_status_change(sandbox: TwilioSandbox, client: Client) -> None:
    sent = client.messages.create(to="+358401234567", from_=SENDER, body="quiet")
    assert client.messages(sent.sid).fetch().status == "queued"


@pytest.mark.parametrize(
    ("body", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("ä" * 306, 2),  # GSM-7 has ä
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("ł" * 70, 1),  # not GSM-7: UCS-2
        ("ł" * 71, 2),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_num_segments(body: str, parts: int) -> None:
    assert num_segments(body) == parts


@pytest.mark.timeout(60)
def test_serve_prints_its_url_answers_and_stops_on_sigterm() -> None:
    with serving("twilio", "SandboxConfig", SID, TOKEN) as url:
        remote = Client(SID, TOKEN)
        remote.api.base_url = url
        assert remote.messages.create(to="+358401234567", from_=SENDER, body="hi").status == "queued"


def test_stop_is_prompt_with_callbacks_pending_and_frees_the_port(receiver: Receiver) -> None:
    sandbox = TwilioSandbox(SandboxConfig(SID, TOKEN, callback_delay_seconds=30))
    sandbox.start()
    client = Client(SID, TOKEN)
    client.api.base_url = sandbox.url
    client.messages.create(to="+358401234567", from_=SENDER, body="hi", status_callback=receiver.base)
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 2
    assert receiver.posts == []
    with pytest.raises(urllib.error.URLError):
        _raw_get(f"{sandbox.url}/2010-04-01/Accounts/{SID}/Messages.json")

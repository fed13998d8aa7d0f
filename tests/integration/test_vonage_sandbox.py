"""The Vonage adapter and the Vonage sandbox, the official SDK between them unchanged (its hosts
pointed at the sandbox, which speaks TLS as Vonage does): sends, each magic status, the SDK's
traps, ambiguous answers reconciled, signed receipts, and the credentials check."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr
from vonage import Vonage
from vonage_http_client import Auth, HttpClientOptions
from vonage_sms import SmsMessage
from vonage_sms.errors import SmsError

from infra.adapters.account_checks import CheckFailed, check_vonage
from infra.adapters.sms import OutgoingSms, SentSms, classify_vonage_error
from infra.adapters.vonage_sms import VonageSms
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
from infra.settings import Settings
from tests.conftest import wait_for
from tests.integration.local_http import PostRecorder, recording
from tooling.sandboxes.vonage import MAGIC_NUMBERS, MAGIC_OUTCOMES, VonageConfig, VonageSandbox

KEY, SECRET, SIGNING = "abcd1234", "sandbox-secret", "signing-secret"
NID = "ntf_" + "7" * 26


class Receipts(PostRecorder):
    """A local receipts endpoint: keeps each receipt's fields, JSON or form."""

    def record(self, request: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        if request.headers.get("Content-Type") == "application/json":
            return dict(json.loads(body))
        return dict(parse_qsl(body.decode()))


@pytest.fixture
def receipts() -> Iterator[Receipts]:
    with recording(Receipts()) as recorder:
        yield recorder


@pytest.fixture
def sandbox(receipts: Receipts) -> Iterator[VonageSandbox]:
    config = VonageConfig(KEY, SECRET, signature_secret=SIGNING, receipts_url=f"{receipts.base}/r")
    with VonageSandbox(config) as running:
        yield running


def _adapter(sandbox: VonageSandbox, **options: Any) -> VonageSms:
    fields: dict[str, Any] = {"timeout": 2, "reports_lag": 0.0, "receipts_url": None, **options}
    return VonageSms(
        KEY, SECRET, rest_host=sandbox.host, api_host=sandbox.host, ca_bundle=sandbox.ca_file, **fields
    )


@pytest.fixture
def vonage(sandbox: VonageSandbox) -> Iterator[VonageSms]:
    adapter = _adapter(sandbox)
    yield adapter
    adapter.close()


def _refusal(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


def test_a_message_is_sent_through_the_sdk_with_its_notification_id_as_client_ref(
    sandbox: VonageSandbox, vonage: VonageSms
) -> None:
    sent = vonage.send(
        to="+447700900999", sender="+447700900000", body="Lasku 12 €", status_callback=None, reference=NID
    )
    (taken,) = sandbox.messages()
    assert sent.provider_id == taken["message_id"]
    assert (taken["to"], taken["from"], taken["client_ref"], taken["message_body"]) == (
        "447700900999",
        "447700900000",
        NID,
        "Lasku 12 €",
    )


@pytest.mark.parametrize("number", sorted(MAGIC_NUMBERS))
def test_each_magic_number_is_refused_with_its_status_classified_in_the_one_place(
    vonage: VonageSms, sandbox: VonageSandbox, number: str
) -> None:
    status, text = MAGIC_NUMBERS[number]
    error = _refusal(lambda: vonage.send(to="+" + number, sender="ACME", body="x", status_callback=None))
    expected = classify_vonage_error(status=status, http_status=200, message=text)
    assert type(error) is type(expected)
    assert error.code == status
    assert not getattr(error, "accepted_unknown", False)
    assert sandbox.messages() == []


def test_wrong_credentials_are_a_permanent_refusal(sandbox: VonageSandbox) -> None:
    adapter = VonageSms(
        KEY, "wrong", rest_host=sandbox.host, api_host=sandbox.host, timeout=2, ca_bundle=sandbox.ca_file
    )
    try:
        error = _refusal(
            lambda: adapter.send(to="+447700900999", sender="ACME", body="x", status_callback=None)
        )
    finally:
        adapter.close()
    assert isinstance(error, PermanentProviderError)
    assert error.code == 4


def test_the_sdk_trap_a_send_signed_by_the_sdk_is_refused_with_status_14(sandbox: VonageSandbox) -> None:
    """Why sends use key + secret only: the SDK signs over fields it then does not send."""
    client = Vonage(Auth(api_key=KEY, signature_secret=SIGNING), HttpClientOptions(rest_host=sandbox.host))
    client.http_client._session.verify = sandbox.ca_file
    client.http_client._session.trust_env = False
    with pytest.raises(SmsError, match="error code 14"):
        client.sms.send(SmsMessage(to="447700900999", from_="ACME", text="signed"))
    assert sandbox.messages() == []


def test_the_sdk_trap_by_default_it_resends_a_post_whose_connection_dropped(sandbox: VonageSandbox) -> None:
    """The SDK's own loop re-sends after a drop: two messages where one was meant."""
    client = Vonage(Auth(api_key=KEY, api_secret=SECRET), HttpClientOptions(rest_host=sandbox.host))
    client.http_client._session.verify = sandbox.ca_file
    client.http_client._session.trust_env = False
    sandbox.drop_after_taking(1)
    client.sms.send(SmsMessage(to="447700900999", from_="ACME", text="twice"))
    assert len(sandbox.messages()) == 2


def test_a_drop_after_the_request_went_out_is_ambiguous_and_never_resent(
    sandbox: VonageSandbox, vonage: VonageSms
) -> None:
    sandbox.drop_after_taking(1)
    error = _refusal(
        lambda: vonage.send(to="+447700900999", sender="ACME", body="once", status_callback=None)
    )
    assert isinstance(error, TransientProviderError)
    assert error.accepted_unknown
    assert len(sandbox.messages()) == 1  # taken once, not re-sent by the SDK


def test_a_late_answer_is_ambiguous_and_reconciled_at_vonage_by_client_ref(
    sandbox: VonageSandbox, vonage: VonageSms
) -> None:
    since = datetime.now(UTC)
    sandbox.answer_late(1, 4)
    error = _refusal(
        lambda: vonage.send(
            to="+447700900999", sender="ACME", body="late", status_callback=None, reference=NID
        )
    )
    assert isinstance(error, TransientProviderError)
    assert error.accepted_unknown
    (taken,) = sandbox.messages()
    assert (
        vonage.find_sent(to="+447700900999", body="other", since=since, reference=NID) == taken["message_id"]
    )
    assert vonage.find_sent(to="+447700900999", body="late", since=since) == taken["message_id"]
    # Its receipts go on meanwhile (the account's receipts URL): sent, then delivered.
    assert vonage.fetch_status(taken["message_id"]) in {("sent", None), ("delivered", None)}
    wait_for(lambda: vonage.fetch_status(taken["message_id"]) == ("delivered", None), what="delivered")


def test_nothing_found_is_not_an_answer_until_the_reports_lag_has_passed(sandbox: VonageSandbox) -> None:
    waiting = _adapter(sandbox, reports_lag=300.0)
    try:
        since = datetime.now(UTC)
        error = _refusal(lambda: waiting.find_sent(to="+447700900999", body="never", since=since))
        assert isinstance(error, TransientProviderError)
        assert error.retry_after is not None
        assert 290 < error.retry_after <= 300
        assert waiting.find_sent(to="+447700900999", body="never", since=since - timedelta(minutes=6)) is None
    finally:
        waiting.close()


def test_an_unknown_message_id_is_a_permanent_answer(vonage: VonageSms) -> None:
    assert isinstance(_refusal(lambda: vonage.fetch_status("no-such-id")), PermanentProviderError)


def test_a_5xx_storm_is_transient_nothing_taken_and_a_429_keeps_its_retry_after(
    sandbox: VonageSandbox, vonage: VonageSms
) -> None:
    sandbox.faults.fail_next(3, 503)
    for _ in range(3):
        error = _refusal(
            lambda: vonage.send(to="+447700900999", sender="ACME", body="x", status_callback=None)
        )
        assert isinstance(error, TransientProviderError)
        assert not error.accepted_unknown
    sandbox.faults.fail_next(1, 429, retry_after=2)
    error = _refusal(lambda: vonage.send(to="+447700900999", sender="ACME", body="x", status_callback=None))
    assert isinstance(error, TransientProviderError)
    assert error.retry_after == 2
    assert sandbox.messages() == []
    vonage.send(to="+447700900999", sender="ACME", body="after", status_callback=None)
    assert len(sandbox.messages()) == 1


def test_nothing_listening_is_a_clean_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = VonageSms(KEY, SECRET, rest_host=f"127.0.0.1:{port}", api_host=f"127.0.0.1:{port}", timeout=2)
    try:
        error = _refusal(
            lambda: adapter.send(to="+447700900999", sender="ACME", body="x", status_callback=None)
        )
    finally:
        adapter.close()
    assert isinstance(error, TransientProviderError)
    assert not error.accepted_unknown


def test_a_batch_is_sent_concurrently_each_once_results_in_order(sandbox: VonageSandbox) -> None:
    adapter = _adapter(sandbox, concurrency=4)
    numbers = [f"+4477009005{i:02d}" for i in range(20)] + ["+447700900001"]
    batch = [
        OutgoingSms(to=n, sender="ACME", body=f"m{i}", reference=f"ntf_{i:026d}")
        for i, n in enumerate(numbers)
    ]
    try:
        results = adapter.send_many(batch)
    finally:
        adapter.close()
    assert all(isinstance(r, SentSms) for r in results[:20])
    assert isinstance(results[20], PermanentProviderError)
    taken = {m["client_ref"]: m for m in sandbox.messages()}
    assert len(taken) == 20
    for i, result in enumerate(results[:20]):
        assert isinstance(result, SentSms)
        assert taken[f"ntf_{i:026d}"]["message_id"] == result.provider_id
    assert sandbox.connections <= 4  # a kept-alive connection per sending thread


@pytest.mark.parametrize("form", ["json", "form"])
def test_receipts_are_posted_signed_as_the_sdk_checks_them(receipts: Receipts, form: str) -> None:
    config = VonageConfig(
        KEY, SECRET, signature_secret=SIGNING, receipt_format=form, receipts_url=f"{receipts.base}/r"
    )
    number = next(iter(MAGIC_OUTCOMES))
    with VonageSandbox(config) as sandbox:
        adapter = _adapter(sandbox, receipts_url=f"{receipts.base}/callbacks/vonage")
        try:
            adapter.send(to="+" + number, sender="ACME", body="x", status_callback="yes", reference=NID)
        finally:
            adapter.close()
        wait_for(lambda: len(receipts.posts) >= 2, what="two receipts")
    accepted, final = receipts.posts
    assert (accepted["status"], final["status"], final["err-code"]) == ("accepted", "failed", "3")
    checker = Auth(api_key=KEY, signature_secret=SIGNING)
    for receipt in (accepted, final):
        assert receipt["client-ref"] == NID
        assert checker.check_signature(dict(receipt))
    assert not Auth(api_key=KEY, signature_secret="other").check_signature(dict(final))


def _settings(sandbox: VonageSandbox, secret: str) -> Settings:
    return Settings(
        vonage_api_key=KEY,
        vonage_api_secret=SecretStr(secret),
        vonage_from="ACME",
        vonage_rest_url=sandbox.host,
        vonage_api_url=sandbox.host,
        vonage_ca_bundle=sandbox.ca_file,
    )


def test_connect_checks_the_credentials_at_vonage(sandbox: VonageSandbox) -> None:
    assert check_vonage(_settings(sandbox, SECRET)).startswith(KEY)
    with pytest.raises(CheckFailed, match="401"):
        check_vonage(_settings(sandbox, "wrong"))

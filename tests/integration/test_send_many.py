"""Batch sends (``send_many``) of the real adapters against the Twilio and SMTP sandboxes.

No broker and no store: the adapters alone, each against a sandbox on a free port. Keep-alive is
measured, not assumed: the sandboxes count the TCP connections they accept.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.adapters.email import OutgoingEmail, SentEmail, SmtpConfig, SmtpEmail, message_id
from infra.adapters.sms import OutgoingSms, SentSms, SmsGateway, TwilioSms
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
from infra.retry_policy import in_call_retrying
from tests.conftest import wait_for
from tooling.sandboxes.smtp import SmtpSandbox
from tooling.sandboxes.twilio import SandboxConfig, TwilioSandbox

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "sandbox-test-token"
SENDER = "+15005550006"
REFUSED = "+15005550001"  # the sandbox answers 21211, as Twilio does for its magic test number
FROM = "billing@acme.example"


@pytest.fixture
def sandbox() -> Iterator[TwilioSandbox]:
    # No status callbacks are asked for: nothing to post.
    with TwilioSandbox(SandboxConfig(SID, TOKEN)) as running:
        yield running


def _twilio(sandbox: TwilioSandbox, **kwargs: Any) -> TwilioSms:
    return TwilioSms(SID, TOKEN, sandbox.url, 5.0, **kwargs)


@pytest.fixture
def twilio(sandbox: TwilioSandbox) -> Iterator[TwilioSms]:
    adapter = _twilio(sandbox, concurrency=16)
    yield adapter
    adapter.close()


def _sms(count: int) -> list[OutgoingSms]:
    return [OutgoingSms(f"+35840{i:07d}", SENDER, f"Lasku {i}: 12,50 € erääntyy") for i in range(count)]


class Overlap:
    """An ``attempt`` hook that tries once and records how many items were under way at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.calls = 0

    def __call__(self, index: int, call: Callable[[], Any]) -> Any:
        with self._lock:
            self.active += 1
            self.calls += 1
            self.most = max(self.most, self.active)
        try:
            return call()
        finally:
            with self._lock:
                self.active -= 1


def test_200_sms_arrive_once_each_in_order_over_far_fewer_connections_than_sends(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    gateway: SmsGateway = twilio
    batch = _sms(200)
    sandbox.faults.delay_seconds = 0.01  # a provider that takes a moment: the sends overlap
    overlap = Overlap()

    results = gateway.send_many(batch, attempt=overlap)

    assert len(results) == 200
    assert all(isinstance(r, SentSms) for r in results), [r for r in results if not isinstance(r, SentSms)]
    captured = sandbox.messages()
    # Exactly once each: 200 messages, 200 distinct numbers and bodies.
    assert len(captured) == 200
    assert Counter(m["to"] for m in captured) == Counter(s.to for s in batch)
    # In order: the i-th result is the sandbox's answer to the i-th message.
    by_sid = {m["sid"]: m for m in captured}
    for sms, result in zip(batch, results, strict=True):
        assert isinstance(result, SentSms)
        assert (by_sid[result.provider_id]["to"], by_sid[result.provider_id]["body"]) == (sms.to, sms.body)
    # Concurrent, within the bound, over one kept-alive connection per sending thread.
    assert overlap.calls == 200
    assert 1 < overlap.most <= twilio.concurrency == 16
    assert sandbox.connections <= twilio.concurrency
    assert sandbox.connections * 10 <= len(batch)


def test_a_refused_number_and_a_500_fail_alone_and_every_other_sms_is_sent(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    batch = _sms(30)
    batch[3] = OutgoingSms(REFUSED, SENDER, "to a number Twilio refuses")
    # The sandbox answers its next request with a 500, whichever message that is: the refused
    # number holds back until another message has taken it, so each failure lands on its own item.
    sandbox.faults.fail_next(1, 500)

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        if index == 3:
            wait_for(lambda: sandbox.faults.pending() == 0, timeout=10, what="the 500 taken")
        return call()

    results = twilio.send_many(batch, attempt=attempt)

    refused = results[3]
    assert isinstance(refused, PermanentProviderError)
    assert (refused.code, refused.status) == (21211, 400)
    failed = [(i, r) for i, r in enumerate(results) if isinstance(r, TransientProviderError)]
    assert len(failed) == 1
    index, error = failed[0]
    assert (error.status, error.accepted_unknown) == (500, False)
    sent = {i for i, r in enumerate(results) if isinstance(r, SentSms)}
    assert sent == set(range(30)) - {3, index}
    captured = sandbox.messages()
    assert sorted(m["to"] for m in captured) == sorted(batch[i].to for i in sent)
    by_sid = {m["sid"]: m["to"] for m in captured}
    assert all(by_sid[r.provider_id] == batch[i].to for i, r in enumerate(results) if isinstance(r, SentSms))


def test_the_attempt_hook_retries_each_item_in_call_and_notes_when_its_accepted_try_began(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    """What a sending stage does per item: ``workers.sending.call_provider``'s loop, per item."""
    batch = _sms(20)
    sandbox.faults.fail_next(2, 503, 20503)
    retried: list[tuple[int, int | None]] = []
    began: dict[int, datetime] = {}
    lock = threading.Lock()

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        def log_retry(exc: BaseException, wait: float) -> None:
            with lock:
                retried.append((index, getattr(exc, "status", None)))

        def timed() -> SentSms:
            began[index] = datetime.now(UTC)
            return call()

        return in_call_retrying(3, 5.0, log_retry, sleep=lambda seconds: None)(timed)

    before = datetime.now(UTC)
    results = twilio.send_many(batch, attempt=attempt)

    assert all(isinstance(r, SentSms) for r in results)
    assert len(sandbox.messages()) == 20
    assert [status for _, status in retried] == [503, 503]
    assert sorted(began) == list(range(20))
    assert all(before <= when <= datetime.now(UTC) for when in began.values())


def test_an_error_outside_the_provider_call_is_that_items_ambiguous_result(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    batch = _sms(5)

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        sent = call()
        if index == 2:
            raise OSError("the store went away while recording it")
        return sent

    results = twilio.send_many(batch, attempt=attempt)

    error = results[2]
    assert isinstance(error, TransientProviderError)
    assert error.accepted_unknown  # sent, in fact: never retried blindly
    assert isinstance(error.__cause__, OSError)
    assert [isinstance(r, SentSms) for r in results] == [True, True, False, True, True]
    assert len(sandbox.messages()) == 5


def test_one_thread_sending_one_by_one_keeps_one_connection(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    for sms in _sms(25):
        twilio.send(to=sms.to, sender=sms.sender, body=sms.body, status_callback=None)
    assert len(sandbox.messages()) == 25
    assert sandbox.connections == 1


def test_a_connection_idle_longer_than_the_keepalive_setting_is_replaced(sandbox: TwilioSandbox) -> None:
    adapter = _twilio(sandbox, concurrency=1, keepalive_idle=0.0)  # every connection "idle too long"
    try:
        results = adapter.send_many(_sms(5))
    finally:
        adapter.close()
    assert all(isinstance(r, SentSms) for r in results)
    assert sandbox.connections == 5


def test_kept_connections_to_a_restarted_provider_are_replaced_without_ambiguity(
    sandbox: TwilioSandbox, twilio: TwilioSms
) -> None:
    first = twilio.send_many(_sms(40))
    assert all(isinstance(r, SentSms) for r in first)
    port = sandbox.port
    sandbox.stop()  # hangs up the kept connections, as a provider's load balancer may
    with TwilioSandbox(SandboxConfig(SID, TOKEN), port=port) as restarted:
        again = twilio.send_many(_sms(40))
        assert all(isinstance(r, SentSms) for r in again), [r for r in again if not isinstance(r, SentSms)]
        assert len(restarted.messages()) == 40
        assert 1 <= restarted.connections <= twilio.concurrency


def test_a_closed_adapter_sends_no_more(sandbox: TwilioSandbox) -> None:
    adapter = _twilio(sandbox, concurrency=4)
    assert all(isinstance(r, SentSms) for r in adapter.send_many(_sms(8)))
    adapter.close()
    adapter.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        adapter.send_many(_sms(1))
    with pytest.raises(TransientProviderError, match="closed") as refused:
        adapter.send(to="+358401234567", sender=SENDER, body="after close", status_callback=None)
    assert not refused.value.accepted_unknown
    assert adapter.send_many([]) == []
    assert len(sandbox.messages()) == 8


# --- email ----------------------------------------------------------------------------------------


@pytest.fixture
def smtp() -> Iterator[SmtpSandbox]:
    with SmtpSandbox() as running:
        yield running


def _smtp(sandbox: SmtpSandbox, **kwargs: Any) -> SmtpEmail:
    return SmtpEmail(SmtpConfig(sandbox.host, sandbox.port, FROM, timeout=5.0), **kwargs)


def _emails(count: int) -> list[OutgoingEmail]:
    return [
        OutgoingEmail(f"ntf_{i:032x}", f"aino{i}@example.fi", f"Lasku {i}", "Hei", "<p>Hei</p>")
        for i in range(count)
    ]


def _ids(results: list[SentEmail | ProviderError]) -> list[str | None]:
    return [r.message_id if isinstance(r, SentEmail) else None for r in results]


def test_50_emails_arrive_once_each_over_a_handful_of_connections_and_a_reject_fails_alone(
    smtp: SmtpSandbox,
) -> None:
    batch = _emails(50)
    batch[7] = OutgoingEmail("ntf_" + "77" * 16, "reject@example.fi", "s", "Hei", "<p>Hei</p>")
    adapter = _smtp(smtp, concurrency=4)
    overlap = Overlap()
    try:
        results = adapter.send_many(batch, attempt=overlap)
    finally:
        adapter.close()

    refused = results[7]
    assert isinstance(refused, PermanentProviderError)
    assert refused.code == 550
    expected = [message_id(e.notification_id, FROM) for e in batch]
    assert _ids(results) == [m if i != 7 else None for i, m in enumerate(expected)]  # in order
    arrived = Counter(str(m["Message-ID"]) for m in smtp.messages)
    assert arrived == Counter(m for i, m in enumerate(expected) if i != 7)  # once each
    assert {str(m["To"]) for m in smtp.messages} == {e.to for i, e in enumerate(batch) if i != 7}
    assert overlap.most <= adapter.concurrency == 4
    # The refusal left its connection usable (RSET): no connection was opened for it.
    assert 1 <= smtp.connections <= 4


def test_a_busy_recipient_is_transient_and_not_ambiguous_and_its_neighbours_arrive(smtp: SmtpSandbox) -> None:
    batch = _emails(6)
    batch[2] = OutgoingEmail("ntf_" + "22" * 16, "busy@example.fi", "s", "Hei", "<p>Hei</p>")
    adapter = _smtp(smtp, concurrency=2)
    try:
        results = adapter.send_many(batch)
    finally:
        adapter.close()
    busy = results[2]
    assert isinstance(busy, TransientProviderError)
    assert (busy.code, busy.accepted_unknown) == (451, False)
    assert sum(isinstance(r, SentEmail) for r in results) == 5
    assert len(smtp.messages) == 5
    assert smtp.connections <= 2


def test_kept_smtp_connections_dropped_by_the_server_are_reopened_and_nothing_is_ambiguous(
    smtp: SmtpSandbox,
) -> None:
    adapter = _smtp(smtp, concurrency=3)
    try:
        assert all(isinstance(r, SentEmail) for r in adapter.send_many(_emails(9)))
        assert smtp.connections <= 3
        port = smtp.port
        smtp.stop()  # the server hangs up every kept connection
        with SmtpSandbox(port=port) as restarted:
            results = adapter.send_many(_emails(9))
            assert all(isinstance(r, SentEmail) for r in results), results
            assert len(restarted.messages) == 9
            assert 1 <= restarted.connections <= 3
    finally:
        adapter.close()


def test_a_server_that_takes_the_data_and_does_not_answer_in_time_is_ambiguous(smtp: SmtpSandbox) -> None:
    adapter = SmtpEmail(SmtpConfig(smtp.host, smtp.port, FROM, timeout=0.5), concurrency=2)
    try:
        smtp.delay_seconds = 2.0
        slow = adapter.send_many(_emails(2))
        for result in slow:
            assert isinstance(result, TransientProviderError)
            assert result.accepted_unknown  # the server has it: resent only with the same Message-ID
        wait_for(lambda: smtp.in_flight == 0, timeout=10, what="the slow answers given")
        smtp.delay_seconds = 0.0
        # The timed-out connections were dropped, never reused: the next batch goes out clean.
        again = adapter.send_many(_emails(2))
        assert all(isinstance(r, SentEmail) for r in again)
    finally:
        adapter.close()
    assert len(smtp.messages) == 4  # the two ambiguous ones did arrive


def test_an_smtp_connection_idle_longer_than_the_setting_is_replaced(smtp: SmtpSandbox) -> None:
    adapter = _smtp(smtp, concurrency=1, keepalive_idle=0.0)
    try:
        assert all(isinstance(r, SentEmail) for r in adapter.send_many(_emails(4)))
    finally:
        adapter.close()
    assert smtp.connections == 4
    assert len(smtp.messages) == 4


def test_a_closed_smtp_adapter_sends_no_more(smtp: SmtpSandbox) -> None:
    adapter = _smtp(smtp, concurrency=2)
    assert all(isinstance(r, SentEmail) for r in adapter.send_many(_emails(3)))
    adapter.close()
    adapter.close()
    with pytest.raises(RuntimeError, match="closed"):
        adapter.send_many(_emails(1))
    assert len(smtp.messages) == 3


def test_a_proxy_named_in_the_environment_is_still_used(
    sandbox: TwilioSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment is read once per session, not on every request: it must still be read.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", sandbox.url)  # the sandbox answers absolute-form requests too
    adapter = TwilioSms(SID, TOKEN, "http://api.twilio.invalid", 5.0, concurrency=2)
    try:
        results = adapter.send_many(_sms(3))
    finally:
        adapter.close()
    assert all(isinstance(r, SentSms) for r in results), results
    assert len(sandbox.messages()) == 3

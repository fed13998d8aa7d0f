"""Batch sends without a provider: the fakes' ``send_many``, the sending pool, and the SMTP adapter's
rules for reusing a kept connection. (Against the sandboxes: ``tests/integration/test_send_many.py``.)"""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Callable
from typing import Any

import pytest

from infra.adapters.batch import SendPool, once, run_item
from infra.adapters.email import (
    EmailGateway,
    OutgoingEmail,
    RecipientRefused,
    SentEmail,
    UnsendableEmail,
    _gone_away,
    _still_usable,
    message_id,
)
from infra.adapters.sms import OutgoingSms, SentSms, SmsGateway
from infra.errors import PermanentProviderError, ProviderError, TransientProviderError
from tests.conftest import wait_for
from tests.fakes import FakeEmail, FakeSms

SENDER = "+15005550006"


def _sms(count: int) -> list[OutgoingSms]:
    return [OutgoingSms(f"+35840{i:07d}", SENDER, f"Lasku {i}", f"https://h/cb/{i}") for i in range(count)]


# --- the fakes ------------------------------------------------------------------------------------


def test_the_fake_sms_sends_a_batch_in_order_and_a_refused_number_fails_alone() -> None:
    fake = FakeSms(refuse={"+358400000002": 21610})
    gateway: SmsGateway = fake
    batch = _sms(5)

    results = gateway.send_many(batch)

    refused = results[2]
    assert isinstance(refused, PermanentProviderError)
    assert refused.code == 21610
    sent = [r for r in results if isinstance(r, SentSms)]
    assert len(sent) == 4
    by_sid = {item["sid"]: item for item in fake.sent}
    for sms, result in zip(batch, results, strict=True):
        if isinstance(result, SentSms):
            item = by_sid[result.provider_id]
            assert (item["to"], item["body"], item["callback"]) == (sms.to, sms.body, sms.status_callback)
    assert gateway.send_many([]) == []


def test_each_item_goes_through_the_attempt_hook_with_its_index() -> None:
    fake = FakeSms()
    seen: list[int] = []

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        seen.append(index)
        if index == 1:  # a hook may retry: here, it tries twice and keeps the second answer
            call()
        return call()

    results = fake.send_many(_sms(3), attempt=attempt)

    assert seen == [0, 1, 2]
    assert len(fake.sent) == 4
    assert [r.provider_id for r in results if isinstance(r, SentSms)] == [
        fake.sent[0]["sid"],
        fake.sent[2]["sid"],
        fake.sent[3]["sid"],
    ]


def test_a_provider_error_the_hook_raises_is_the_items_result_and_anything_else_is_ambiguous() -> None:
    fake = FakeSms()
    planned = TransientProviderError("busy", code=20429, status=429, retry_after=30.0)

    def attempt(index: int, call: Callable[[], SentSms]) -> SentSms:
        if index == 0:
            raise planned  # e.g. the stage gave up retrying in-call
        sent = call()
        if index == 1:
            raise KeyError("the hook's own bug, after the provider took it")
        return sent

    results = fake.send_many(_sms(3), attempt=attempt)

    assert results[0] is planned
    ambiguous = results[1]
    assert isinstance(ambiguous, TransientProviderError)
    assert ambiguous.accepted_unknown
    assert isinstance(ambiguous.__cause__, KeyError)
    assert "KeyError" in str(ambiguous)
    assert isinstance(results[2], SentSms)


def test_the_fake_email_sends_a_batch_in_order_and_each_failure_stays_its_own() -> None:
    fake = FakeEmail(sender="billing@acme.example", refuse={"reject@example.fi": 550, "busy@example.fi": 451})
    gateway: EmailGateway = fake
    batch = [
        OutgoingEmail("ntf_" + "00" * 16, "aino@example.fi", "Lasku 1", "Hei", "<p>Hei</p>"),
        OutgoingEmail("ntf_" + "11" * 16, "reject@example.fi", "Lasku 2", "Hei", "<p>Hei</p>"),
        OutgoingEmail("ntf_" + "22" * 16, "busy@example.fi", "Lasku 3", "Hei", "<p>Hei</p>"),
        OutgoingEmail("ntf_" + "33" * 16, "eino@example.fi", "Lasku 4\r\nBcc: x@example.com", "Hei", "<p/>"),
        OutgoingEmail("ntf_" + "44" * 16, "eino@example.fi", "Lasku 5", "Hei", "<p>Hei</p>"),
    ]

    results = gateway.send_many(batch)

    assert [type(r) for r in results] == [
        SentEmail,
        RecipientRefused,  # a 5xx to RCPT TO: a hard bounce, which suppresses the address
        TransientProviderError,
        UnsendableEmail,
        SentEmail,
    ]
    assert isinstance(results[1], ProviderError)
    assert results[1].code == 550
    busy = results[2]
    assert isinstance(busy, TransientProviderError)
    assert (busy.code, busy.accepted_unknown) == (451, False)
    assert [r.message_id for r in results if isinstance(r, SentEmail)] == [
        message_id(batch[0].notification_id, fake.sender),
        message_id(batch[4].notification_id, fake.sender),
    ]
    assert [str(m["To"]) for m in fake.sent] == ["aino@example.fi", "eino@example.fi"]


def test_the_fakes_say_whether_they_were_closed() -> None:
    sms, email = FakeSms(), FakeEmail()
    assert not sms.closed
    assert not email.closed
    sms.close()
    email.close()
    assert sms.closed
    assert email.closed


# --- the sending pool -----------------------------------------------------------------------------


def test_results_come_back_in_order_whatever_order_the_items_finish_in() -> None:
    pool = SendPool(4, "test-pool")
    done: dict[int, threading.Event] = {i: threading.Event() for i in range(4)}

    def send_one(item: int) -> int:
        # Each item waits for the one after it: they finish last to first.
        if item < 3:
            assert done[item + 1].wait(10)
        done[item].set()
        return item * 10

    try:
        assert pool.run([0, 1, 2, 3], send_one, once, "test") == [0, 10, 20, 30]
    finally:
        pool.close()


def test_the_pool_has_at_most_its_size_of_items_under_way() -> None:
    pool = SendPool(3, "test-pool")
    lock, release = threading.Lock(), threading.Event()
    active = {"now": 0, "most": 0}

    def send_one(item: int) -> int:
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
        assert release.wait(10)
        with lock:
            active["now"] -= 1
        return item

    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.extend(pool.run(list(range(10)), send_one, once, "t")))
    runner.start()
    try:
        wait_for(lambda: active["now"] == 3, timeout=10, what="three items under way")
        assert active["now"] == 3  # the other seven wait for a thread
    finally:
        release.set()
        runner.join(10)
        pool.close()
    assert results == list(range(10))
    assert active["most"] == 3


def test_a_closed_pool_refuses_work_and_closing_twice_is_harmless() -> None:
    pool = SendPool(2, "test-pool")
    assert pool.run([1, 2], lambda item: item, once, "t") == [1, 2]
    pool.close()
    pool.close()
    assert pool.closed
    with pytest.raises(RuntimeError, match="closed"):
        pool.run([1], lambda item: item, once, "t")
    assert pool.run([], lambda item: item, once, "t") == []


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SendPool(0, "test-pool")


def test_an_unforeseen_error_is_ambiguous_and_its_text_masks_a_phone_number() -> None:
    def call() -> str:
        raise ValueError("bad answer for +358401234567")

    result = run_item(once, 0, call, "sms to twilio")
    assert isinstance(result, TransientProviderError)
    assert result.accepted_unknown
    assert "+358401234567" not in str(result)


# --- reusing a kept SMTP connection ---------------------------------------------------------------


def _disconnected_by(cause: BaseException) -> smtplib.SMTPServerDisconnected:
    """What smtplib raises when reading or writing fails: the OS error is its context."""
    exc = smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {cause}")
    exc.__context__ = cause
    return exc


@pytest.mark.parametrize(
    ("exc", "gone"),
    [
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), True),
        (_disconnected_by(BrokenPipeError()), True),
        (ConnectionResetError(), True),
        (smtplib.SMTPSenderRefused(421, b"closing", "billing@acme.example"), True),
        (smtplib.SMTPRecipientsRefused({"a@example.fi": (421, b"closing")}), True),
        (_disconnected_by(TimeoutError("timed out")), False),  # slow, not gone: no second try
        (TimeoutError("timed out"), False),
        (smtplib.SMTPRecipientsRefused({"a@example.fi": (550, b"no such user")}), False),
        (smtplib.SMTPSenderRefused(451, b"later", "billing@acme.example"), False),
    ],
)
def test_which_failures_on_a_kept_connection_mean_the_server_had_closed_it(
    exc: BaseException, gone: bool
) -> None:
    assert _gone_away(exc) is gone


@pytest.mark.parametrize(
    ("exc", "usable"),
    [
        (smtplib.SMTPRecipientsRefused({"a@example.fi": (550, b"no such user")}), True),
        (smtplib.SMTPRecipientsRefused({"a@example.fi": (451, b"try later")}), True),
        (smtplib.SMTPSenderRefused(553, b"no", "billing@acme.example"), True),
        (smtplib.SMTPDataError(554, b"rejected"), True),
        (smtplib.SMTPRecipientsRefused({"a@example.fi": (421, b"closing")}), False),
        (smtplib.SMTPServerDisconnected("gone"), False),
        (TimeoutError("timed out"), False),
        (ConnectionResetError(), False),
    ],
)
def test_a_connection_carries_the_next_message_only_after_a_clear_refusal(
    exc: BaseException, usable: bool
) -> None:
    assert _still_usable(exc) is usable

"""Permanent or transient: decided in one place."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from infra.adapters.sms import classify_twilio_error
from infra.errors import MalformedMessage, PermanentProviderError, TransientProviderError
from infra.retry_policy import is_permanent, retry_when
from tests.fakes import FakeSms


@pytest.mark.parametrize("code", [21211, 21408, 21610, 21612, 21614, 21635, 30004, 30005, 30006, 30007])
def test_twilio_refusals_that_retrying_cannot_fix_are_permanent(code: int) -> None:
    assert isinstance(
        classify_twilio_error(TwilioRestException(400, "/x", code=code)), PermanentProviderError
    )


@pytest.mark.parametrize(
    ("status", "code"), [(429, 20429), (500, None), (503, None), (400, 30001), (400, 30008)]
)
def test_rate_limits_server_errors_and_queue_overflow_are_transient(status: int, code: int | None) -> None:
    assert isinstance(
        classify_twilio_error(TwilioRestException(status, "/x", code=code)), TransientProviderError
    )


def test_malformed_messages_are_never_retried_and_other_errors_are_until_the_budget_ends() -> None:
    should_retry = retry_when(max_retries=3)
    assert not should_retry(0, MalformedMessage("bad"))
    assert is_permanent(MalformedMessage("bad"))
    assert should_retry(2, ConnectionError("reset"))
    assert not should_retry(3, ConnectionError("reset"))


def test_the_fake_gateway_refuses_like_twilio_and_finds_what_it_sent() -> None:
    fake = FakeSms(refuse={"+15005550001": 21211})
    with pytest.raises(PermanentProviderError):
        fake.send(to="+15005550001", sender="+1", body="x", status_callback=None)
    sent = fake.send(to="+358401234567", sender="+1", body="hello", status_callback=None)
    assert sent.provider_id.startswith("SM")
    assert fake.find_sent(to="+358401234567", body="hello", since=None) == sent.provider_id  # type: ignore[arg-type]

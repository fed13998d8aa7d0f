"""Failover between SMS providers (workers/rules/failover.py), rule by rule."""

from __future__ import annotations

from infra.errors import PermanentProviderError, TransientProviderError
from workers.rules.breaker import Signal
from workers.rules.failover import (
    Failure,
    choose,
    failure_of,
    may_move,
    order,
    rate_key,
    sender_for,
    signal_of,
)

BOTH = ("twilio", "vonage")
HTTP_503 = TransientProviderError("HTTP 503", status=503)
REFUSED_BEFORE_SENDING = TransientProviderError("connection refused")
TIMEOUT_AFTER_SENDING = TransientProviderError("read timeout", accepted_unknown=True)
INVALID_NUMBER = PermanentProviderError("invalid number", code=21211, status=400)
OPTED_OUT = PermanentProviderError("opted out", code=21610, status=400)


def test_a_notification_goes_to_the_first_provider_of_the_list() -> None:
    assert choose(BOTH, None, lambda name: True) == "twilio"
    assert choose(("vonage", "twilio"), None, lambda name: True) == "vonage"


def test_an_organisation_that_never_chose_uses_twilio_alone() -> None:
    assert order((), None) == ["twilio"]


def test_an_open_circuit_sends_it_to_the_next_provider() -> None:
    assert choose(BOTH, None, lambda name: name != "twilio") == "vonage"


def test_every_circuit_open_means_come_back_later() -> None:
    assert choose(BOTH, None, lambda name: False) is None


def test_after_an_unambiguous_failure_the_next_try_starts_at_the_next_provider() -> None:
    assert order(BOTH, "twilio") == ["vonage", "twilio"]
    assert order(BOTH, "vonage") == ["twilio", "vonage"]
    assert order(("a", "b", "c"), "b") == ["c", "a", "b"]
    assert choose(BOTH, "twilio", lambda name: True) == "vonage"


def test_a_provider_no_longer_listed_is_no_place_to_start_from() -> None:
    assert order(BOTH, "gone") == ["twilio", "vonage"]


def test_breakers_are_asked_in_order_and_only_until_one_admits() -> None:
    asked: list[str] = []

    def admits(name: str) -> bool:
        asked.append(name)
        return name == "b"

    assert choose(("a", "b", "c"), None, admits) == "b"
    assert asked == ["a", "b"]  # c's half-open trial is not spent


def test_refused_before_sending_and_5xx_are_unambiguous_and_may_move() -> None:
    assert failure_of(HTTP_503) == Failure.UNAMBIGUOUS
    assert failure_of(REFUSED_BEFORE_SENDING) == Failure.UNAMBIGUOUS
    assert may_move(Failure.UNAMBIGUOUS)


def test_a_timeout_after_the_request_went_out_is_ambiguous_and_stays() -> None:
    assert failure_of(TIMEOUT_AFTER_SENDING) == Failure.AMBIGUOUS
    assert not may_move(Failure.AMBIGUOUS)


def test_an_unforeseen_error_is_taken_as_ambiguous() -> None:
    assert failure_of(RuntimeError("?")) == Failure.AMBIGUOUS


def test_permanent_recipient_errors_never_fail_over() -> None:
    assert failure_of(INVALID_NUMBER) == Failure.PERMANENT
    assert failure_of(OPTED_OUT) == Failure.PERMANENT
    assert not may_move(Failure.PERMANENT)


def test_what_an_outcome_tells_the_breaker() -> None:
    assert signal_of(None) == Signal.SUCCESS
    assert signal_of(HTTP_503) == Signal.FAILURE
    assert signal_of(TIMEOUT_AFTER_SENDING) == Signal.FAILURE  # timeouts open breakers too
    assert signal_of(INVALID_NUMBER) == Signal.NEUTRAL


def test_each_provider_sends_from_its_own_sender_when_the_organisation_gave_one() -> None:
    assert sender_for("vonage", "ACME", "+358401234567", "HERALD") == "ACME"
    assert sender_for("twilio", "+358409999999", "+358401234567", "+15005550006") == "+358409999999"


def test_twilio_keeps_the_sender_chosen_at_render_as_before_failover() -> None:
    assert sender_for("twilio", None, "ACME", "+15005550006") == "ACME"
    assert sender_for("twilio", None, None, "+15005550006") == "+15005550006"


def test_another_provider_falls_back_to_its_own_default_sender_then_the_rendered_one() -> None:
    assert sender_for("vonage", None, "+358401234567", "HERALD") == "HERALD"
    assert sender_for("vonage", None, "+358401234567", None) == "+358401234567"


def test_each_provider_paces_its_senders_on_timelines_of_its_own() -> None:
    assert rate_key("twilio", "+358401234567") == "+358401234567"  # as before failover
    assert rate_key("vonage", "+358401234567") == "vonage:+358401234567"

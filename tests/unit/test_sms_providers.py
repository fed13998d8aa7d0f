"""An organisation's SMS provider list (schemas/providers.py): changes keep what was not named,
hostile values are refused naming the problem, a damaged stored list reads as the default."""

from __future__ import annotations

import pytest

from schemas.providers import SmsProvider, changed_list, parse_stored


def test_the_default_list_is_twilio_alone() -> None:
    assert changed_list(()) == (SmsProvider("twilio"),)


def test_a_new_order_keeps_each_providers_sender_and_rate() -> None:
    current = (SmsProvider("twilio", "+358401234567", 1.0), SmsProvider("vonage", "ACME", 10.0))
    assert changed_list(current, order=["vonage", "twilio"]) == (current[1], current[0])


def test_a_provider_left_out_of_the_order_is_dropped() -> None:
    current = (SmsProvider("twilio"), SmsProvider("vonage", "ACME"))
    assert changed_list(current, order=["vonage"]) == (SmsProvider("vonage", "ACME"),)


def test_an_empty_sender_clears_it() -> None:
    current = (SmsProvider("twilio", "ACME", 2.0),)
    assert changed_list(current, senders={"twilio": ""}) == (SmsProvider("twilio", None, 2.0),)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"order": []}, "at least one provider"),
        ({"order": ["twilio"] * 6}, "listed twice"),
        ({"order": ["twilio", "vonage", "a", "b", "c", "d"]}, "expected one of"),
        ({"senders": {"vonage": "ACME"}}, "not in the list"),
        ({"rates": {"twilio": -0.5}}, "between 0 and"),
        ({"rates": {"twilio": float("nan")}}, "a number of segments per second"),
        ({"senders": {"twilio": "A" * 12}}, "an E.164 number"),
        ({"senders": {"twilio": "12345"}}, "an E.164 number"),
    ],
)
def test_hostile_changes_are_refused_naming_the_problem(change: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        changed_list((SmsProvider("twilio"),), **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "stored",
    [None, "twilio", 42, {"name": "twilio"}, [None, 1, "x"], [{"name": "../etc"}], [{"name": 7}]],
)
def test_a_damaged_stored_list_reads_as_the_default(stored: object) -> None:
    assert parse_stored(stored) == ()


def test_a_stored_entry_with_wrong_types_keeps_its_name_only() -> None:
    assert parse_stored([{"name": "vonage", "sender": 5, "rate": "fast"}]) == (SmsProvider("vonage"),)
    assert parse_stored([{"name": "vonage", "rate": True}]) == (SmsProvider("vonage"),)

"""The event contract: what is accepted, and how a refusal names the problem."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from infra.errors import InvalidEvent
from schemas.events import InvoiceCreated, PaymentReceived, ReminderDue, event_json_schema
from schemas.validation import event_to_json, parse_event
from tests.factories import invoice_created, payment_received, reminder_due


def test_each_of_the_three_event_types_parses_to_its_model() -> None:
    assert isinstance(parse_event(invoice_created()), InvoiceCreated)
    assert isinstance(parse_event(reminder_due()), ReminderDue)
    assert isinstance(parse_event(payment_received()), PaymentReceived)


def test_amounts_are_decimals_and_go_back_out_as_the_same_strings() -> None:
    event = parse_event(invoice_created(total="1234.50"))
    assert isinstance(event, InvoiceCreated)
    assert event.data.invoice.total == Decimal("1234.50")
    assert event_to_json(event)["data"]["invoice"]["total"] == "1234.50"


def test_fields_added_upstream_are_kept() -> None:
    event = parse_event(invoice_created(po_number="PO-7"))
    assert event_to_json(event)["data"]["invoice"]["po_number"] == "PO-7"


def test_the_invoice_and_customer_an_event_concerns() -> None:
    assert parse_event(payment_received()).invoice_id == "INV-1"
    assert parse_event(reminder_due()).customer_id == "C1"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["data"]["invoice"].pop("total"), "data.invoice.total: Field required"),
        (lambda e: e.pop("event_id"), "event_id: Field required"),
        (lambda e: e.update(type="invoice.paid"), "type: unknown event type 'invoice.paid'"),
        (lambda e: e.pop("type"), "type: Field required"),
        (
            lambda e: e["data"]["invoice"].update(total=12.5),
            "data.invoice.total: Value error, must be a decimal",
        ),
        (
            lambda e: e["data"]["invoice"].update(currency="euro"),
            "data.invoice.currency: String should match",
        ),
        (lambda e: e.update(occurred_at="2026-11-23T10:00:00"), "occurred_at: Input should have timezone"),
        (lambda e: e.update(event_id=""), "event_id: String should have at least 1 character"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field_and_the_problem(mutate, expected) -> None:  # type: ignore[no-untyped-def]
    event = invoice_created()
    mutate(event)
    with pytest.raises(InvalidEvent) as info:
        parse_event(event)
    assert expected in info.value.reason


def test_text_that_is_not_json_is_refused_with_the_parser_position() -> None:
    with pytest.raises(InvalidEvent, match=r"not valid JSON: .*line 1 column 10"):
        parse_event('{"type": ')


def test_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEvent, match="must be a JSON object, got list"):
        parse_event("[1, 2]")


def test_an_event_over_the_size_limit_is_refused_with_both_sizes() -> None:
    big = json.dumps(invoice_created(note="x" * 5000))
    with pytest.raises(InvalidEvent, match=rf"event is {len(big)} bytes, over the limit of 4096 bytes"):
        parse_event(big, max_bytes=4096)


def test_the_json_schema_names_the_three_types_and_a_version() -> None:
    schema = event_json_schema()
    text = json.dumps(schema)
    for kind in ("invoice.created", "reminder.due", "payment.received"):
        assert f'"{kind}"' in text
    assert schema["x-herald-schema-version"] == "1"
    assert schema["$schema"].endswith("2020-12/schema")

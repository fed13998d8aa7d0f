"""The reminder rules, one test per sentence (``workers.rules.scheduling``), and the CLI's offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import typer

from producers.cli.reminders_cmd import parse_offsets
from schemas.rows import GreetingNames
from schemas.validation import parse_event
from tests.factories import INVOICE, invoice_row, reminder_due
from workers.rules.render import render_notification
from workers.rules.scheduling import Plan, fire_time, plan, reminder_event, reminder_event_id

DUE = date(2026, 12, 1)
OFFSETS = (-3, 1, 7)


def at(day: int, hour: int = 12, month: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def decide(now: datetime, decided: tuple[int, ...] = (), paid: bool = False) -> Plan:
    return plan(DUE, paid=paid, offsets=OFFSETS, decided=decided, now=now, hour=9)


def test_a_reminder_fires_on_the_due_date_plus_its_offset_at_the_configured_hour_utc() -> None:
    assert fire_time(DUE, -3, 9) == datetime(2026, 11, 28, 9, tzinfo=UTC)
    assert fire_time(DUE, 7, 0) == datetime(2026, 12, 8, 0, tzinfo=UTC)


def test_nothing_fires_before_the_first_offsets_time() -> None:
    assert decide(datetime(2026, 11, 28, 8, 59, tzinfo=UTC)) == Plan()


def test_an_offset_fires_when_its_time_has_come() -> None:
    assert decide(datetime(2026, 11, 28, 9, tzinfo=UTC)) == Plan(publish=-3)


def test_an_offset_already_sent_does_not_fire_again() -> None:
    assert decide(at(29, month=11), decided=(-3,)) == Plan()


def test_each_offset_fires_once_in_turn() -> None:
    assert decide(at(2), decided=(-3,)) == Plan(publish=1)
    assert decide(at(8), decided=(-3, 1)) == Plan(publish=7)
    assert decide(at(30), decided=(-3, 1, 7)) == Plan()


def test_after_downtime_only_the_latest_missed_reminder_goes_and_the_earlier_ones_are_superseded() -> None:
    assert decide(at(20)) == Plan(publish=7, supersede=(-3, 1))


def test_after_downtime_an_earlier_reminder_already_sent_is_not_superseded_again() -> None:
    assert decide(at(20), decided=(-3,)) == Plan(publish=7, supersede=(1,))


def test_a_paid_invoice_gets_no_reminder() -> None:
    assert decide(at(20), paid=True) == Plan()


def test_an_organisation_without_offsets_sends_no_reminder() -> None:
    assert plan(DUE, paid=False, offsets=(), decided=(), now=at(20), hour=9) == Plan()


def test_the_event_id_is_the_same_for_the_same_invoice_and_offset_and_differs_otherwise() -> None:
    assert reminder_event_id("INV-1", 7) == reminder_event_id("INV-1", 7) == "rem_INV-1_7"
    ids = {reminder_event_id(i, o) for i in ("INV-1", "INV-1_7", "INV") for o in (-3, 1, 7)}
    assert len(ids) == 9
    assert len(reminder_event_id("X" * 200, -3)) <= 200


def test_the_reminder_event_is_a_valid_reminder_due_identical_every_time() -> None:
    first = reminder_event(invoice_row(), -3, hour=9, template="gentle")
    assert first == reminder_event(invoice_row(), -3, hour=9, template="gentle")
    event = parse_event(first)
    assert event.type == "reminder.due"
    assert event.occurred_at == datetime(2026, 11, 28, 9, tzinfo=UTC)
    assert event.data.reminder.offset_days == -3
    assert first["data"]["reminder"]["template"] == "gentle"
    assert first["data"]["invoice"] == INVOICE  # word for word as the invoice.created carried it
    assert "template" not in reminder_event(invoice_row(), 1, hour=9)["data"]["reminder"]


def test_a_reminder_naming_a_template_key_renders_the_organisations_variant() -> None:
    names = GreetingNames(org="Acme", customer="C", contact="Aino")
    payload = reminder_due(offset_days=7)
    payload["data"]["reminder"]["template"] = "final"
    overrides = {("payment_reminder.final", "sms", "en", "body"): "FINAL {{ invoice.number }}"}
    event = parse_event(payload)
    assert (
        render_notification(
            "payment_reminder", "sms", event, locales=["en"], names=names, overrides=overrides
        ).parts["body"]
        == "FINAL 1001"
    )


def test_a_contact_whose_locale_has_no_variant_gets_the_standard_reminder_in_their_language() -> None:
    names = GreetingNames(org="Acme", customer="C", contact="Aino")
    payload = reminder_due(offset_days=7)
    payload["data"]["reminder"]["template"] = "final"
    overrides = {("payment_reminder.final", "sms", "en", "body"): "FINAL {{ invoice.number }}"}
    rendered = render_notification(
        "payment_reminder", "sms", parse_event(payload), locales=["fi"], names=names, overrides=overrides
    )
    assert rendered.locale == "fi"
    assert "FINAL" not in rendered.parts["body"]


def test_offsets_are_whole_days_with_an_optional_template_key() -> None:
    assert parse_offsets(["-3", "+1=firm", "7"], None) == {-3: None, 1: "firm", 7: None}
    assert parse_offsets(["-3", "+7"], "soft") == {-3: "soft", 7: "soft"}


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (["+1.5"], "whole days"),
        (["+400"], "from -365 to"),
        (["+1", "1"], "given twice"),
        (["+1=Bad Key"], "whole days"),
        ([], "at least one offset"),
    ],
)
def test_bad_offsets_are_refused_with_a_clear_message(tokens: list[str], message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        parse_offsets(tokens, None)


def test_a_partly_paid_invoices_reminder_asks_for_what_is_still_owed() -> None:
    payload = reminder_due(offset_days=7)
    payload["data"]["reminder"]["outstanding"] = "1000.00"
    names = GreetingNames(org="Acme", customer="C", contact="Aino")
    body = render_notification(
        "payment_reminder", "sms", parse_event(payload), locales=["en"], names=names
    ).parts["body"]
    assert "1,000.00" in body
    assert "1,234.50" not in body

"""Collection-aware dunning (``workers.rules.dunning``), one test per sentence."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.factories import invoice_row
from workers.rules.dunning import Collection, Deferral, deferral, outstanding
from workers.rules.scheduling import ReminderCalendar, reminder_event

TODAY = date(2026, 12, 8)


def test_a_reminder_waits_while_a_payment_is_pending_submission_or_submitted() -> None:
    for status in ("pending_submission", "submitted"):
        pending = Collection("PM1", status, charge_date=date(2026, 12, 10))
        assert deferral([pending], TODAY, grace_days=3) == Deferral("PM1", status, date(2026, 12, 13))


def test_a_payment_on_its_way_without_a_charge_date_defers_while_it_is_on_its_way() -> None:
    assert deferral([Collection("PM1", "pending_submission")], TODAY, 3) == Deferral(
        "PM1", "pending_submission", None
    )


def test_a_failed_payment_that_will_be_retried_defers_until_its_charge_date_plus_the_grace_period() -> None:
    retry = Collection("PM1", "failed", charge_date=date(2026, 12, 7), will_attempt_retry=True)
    assert deferral([retry], TODAY, grace_days=3) == Deferral("PM1", "failed_will_retry", date(2026, 12, 10))
    assert deferral([retry], date(2026, 12, 10), grace_days=3) is not None
    assert deferral([retry], date(2026, 12, 11), grace_days=3) is None  # the grace period is over


def test_a_retry_without_a_known_charge_date_defers_nothing() -> None:
    assert deferral([Collection("PM1", "failed", will_attempt_retry=True)], TODAY, 3) is None


def test_a_failed_payment_with_no_retry_resumes_the_schedule() -> None:
    assert deferral([Collection("PM1", "failed", charge_date=date(2026, 12, 7))], TODAY, 3) is None


def test_payments_that_are_settled_defer_nothing() -> None:
    done = [Collection("PM1", s) for s in ("confirmed", "paid_out", "cancelled", "charged_back")]
    assert deferral(done, TODAY, 3) is None


def test_a_payment_on_its_way_wins_over_an_older_failed_one() -> None:
    payments = [Collection("PM1", "failed"), Collection("PM2", "submitted", charge_date=date(2026, 12, 9))]
    assert deferral(payments, TODAY, 1) == Deferral("PM2", "submitted", date(2026, 12, 10))


def test_partial_payments_reduce_what_a_reminder_asks_for() -> None:
    assert outstanding(Decimal("1234.50"), Decimal("0")) is None
    assert outstanding(Decimal("1234.50"), Decimal("234.50")) == Decimal("1000.00")
    assert outstanding(Decimal("100"), Decimal("150")) == Decimal(0)
    event = reminder_event(invoice_row(), 7, hour=ReminderCalendar(hour=9), outstanding=Decimal("1000.00"))
    assert event["data"]["reminder"]["outstanding"] == "1000.00"
    assert event["data"]["invoice"]["balance"] == "1234.50"  # the invoice itself word for word


# --- payment.failed: the customer is told ---------------------------------------------------------


def test_a_failed_direct_debit_makes_a_payment_failed_notification() -> None:
    from schemas.notifications import Kind
    from schemas.validation import parse_event
    from tests.factories import payment_failed
    from workers.rules.recipients import notification_kind

    assert notification_kind(parse_event(payment_failed())) == (Kind.PAYMENT_FAILED, "routed")


@pytest.mark.parametrize(
    ("channel", "locale", "says"),
    [
        ("sms", "en", "Direct Debit payment of €1,234.50 failed"),
        ("sms", "fi", "Suoraveloitus 1 234,50 € epäonnistui"),
        ("sms", "ja", "口座振替"),
        ("email", "en", "Direct Debit payment failed: €1,234.50"),
        ("email", "fi", "Suoraveloitus epäonnistui"),
        ("email", "ja", "口座振替のお引き落としができませんでした"),
    ],
)
def test_herald_ships_payment_failed_templates_for_sms_and_email_in_three_languages(
    channel: str, locale: str, says: str
) -> None:
    from schemas.rows import GreetingNames
    from schemas.validation import parse_event
    from tests.factories import payment_failed
    from workers.rules.render import render_notification

    names = GreetingNames(org="Acme Oy", customer="Kuluttaja Oy", contact="Aino")
    rendered = render_notification(
        "payment_failed", channel, parse_event(payment_failed()), locales=[locale], names=names
    )
    assert rendered.locale == locale
    text = rendered.parts["body"] if channel == "sms" else rendered.parts["subject"] + rendered.parts["text"]
    assert says in text, text


def test_the_webhooks_payment_failed_event_names_the_invoice_and_the_reason() -> None:
    from producers.gocardless.webhooks import payment_failed as from_webhook
    from schemas.validation import parse_event

    stored = {
        "gc_id": "PM0001",
        "org_id": "acme",
        "invoice_id": "INV-1",
        "customer_id": "C1",
        "amount_minor": 123450,
        "currency": "EUR",
    }
    webhook = {"id": "EV0001", "created_at": "2026-12-04T10:00:00Z", "details": {"description": "x" * 500}}
    event = from_webhook(webhook, stored)
    assert event is not None
    parsed = parse_event(event)
    assert parsed.event_id == "gocardless-EV0001"
    assert parsed.data.payment.amount == Decimal("1234.50")
    assert parsed.data.payment.reason == "x" * 200
    assert from_webhook(webhook, {**stored, "invoice_id": None}) is None  # not known: nobody told

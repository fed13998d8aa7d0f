"""Collection-aware dunning (``workers.rules.dunning``), one test per sentence."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

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

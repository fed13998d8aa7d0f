"""What is said: the skeleton's SMS texts in the contact's language."""

from __future__ import annotations

from schemas.notifications import Kind
from schemas.validation import parse_event
from tests.factories import invoice_created, payment_received, reminder_due
from workers.rules.render import render_sms


def test_an_invoice_sms_in_english_names_number_amount_due_date_and_link() -> None:
    body = render_sms(Kind.INVOICE, "en", parse_event(invoice_created()))
    assert body == "Invoice 1001: EUR 1,234.50 due 2026-12-01. https://billing.example/i/INV-1"


def test_an_invoice_sms_in_finnish_uses_finnish_number_and_date_formats() -> None:
    body = render_sms(Kind.INVOICE, "fi", parse_event(invoice_created()))
    assert body == "Lasku 1001: 1\u00a0234,50 EUR, eräpäivä 1.12.2026. https://billing.example/i/INV-1"


def test_an_unknown_locale_falls_back_to_english() -> None:
    assert render_sms(Kind.PAYMENT_REMINDER, "xx", parse_event(reminder_due())).startswith("Reminder:")


def test_a_regional_locale_uses_its_language() -> None:
    assert render_sms(Kind.PAYMENT_THANK_YOU, "fi-FI", parse_event(payment_received())).startswith("Kiitos!")

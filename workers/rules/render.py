"""What is said: the SMS text of a notification, in the contact's language.

The walking skeleton ships one built-in text per kind in English and Finnish;
per-organisation templates, more locales and email bodies come with the
templates issue.
"""

from __future__ import annotations

from decimal import Decimal

from schemas.events import Event, InvoiceCreated, PaymentReceived, ReminderDue
from schemas.notifications import Kind

_TEXTS: dict[str, dict[Kind, str]] = {
    "en": {
        Kind.INVOICE: "Invoice {number}: {amount} due {due}. {url}",
        Kind.PAYMENT_REMINDER: "Reminder: invoice {number}, {amount}, was due {due}. {url}",
        Kind.PAYMENT_THANK_YOU: "Thank you! We received your payment of {amount}.",
    },
    "fi": {
        Kind.INVOICE: "Lasku {number}: {amount}, eräpäivä {due}. {url}",
        Kind.PAYMENT_REMINDER: "Muistutus: lasku {number}, {amount}, erääntyi {due}. {url}",
        Kind.PAYMENT_THANK_YOU: "Kiitos! Saimme maksusi {amount}.",
    },
}
FALLBACK_LOCALE = "en"


def _money(amount: Decimal, currency: str, locale: str) -> str:
    text = f"{amount:,.2f}"
    if locale == "fi":
        # Finnish: non-breaking space thousands, decimal comma, code after the amount.
        return text.replace(",", "\u00a0").replace(".", ",") + f" {currency}"
    return f"{currency} {text}"


def _language(locale: str) -> str:
    language = locale.replace("_", "-").split("-")[0].lower()
    return language if language in _TEXTS else FALLBACK_LOCALE


def render_sms(kind: Kind, locale: str, event: Event) -> str:
    """The SMS body for ``kind`` and ``event`` in ``locale`` (English when unknown)."""
    language = _language(locale)
    template = _TEXTS[language][kind]
    if isinstance(event, InvoiceCreated | ReminderDue):
        invoice = event.data.invoice
        due = invoice.due_date.strftime("%-d.%-m.%Y") if language == "fi" else invoice.due_date.isoformat()
        return template.format(
            number=invoice.number,
            amount=_money(invoice.balance, invoice.currency, language),
            due=due,
            url=invoice.url,
        )
    if isinstance(event, PaymentReceived):
        payment = event.data.payment
        return template.format(amount=_money(payment.amount, payment.currency, language))
    raise TypeError(f"not an event: {event!r}")  # pragma: no cover - the union is closed

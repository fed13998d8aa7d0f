"""Who is told: pure decisions from an event and the customer's directory entry.

The walking skeleton applies the SMS rules that depend only on the directory
(customer switch, contact switch, primary vs contact person, phone number);
organisation-level rules, opt-outs and email arrive with the recipients issue.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.directory import ContactView, CustomerView
from schemas.events import Event, InvoiceCreated, PaymentReceived, ReminderDue
from schemas.notifications import Channel, Kind

#: The go-ahead reason: the notification goes on to render and send.
SEND = "send"


@dataclass(frozen=True)
class Decision:
    """One (contact, channel) outcome: ``reason`` is ``send`` or why it was skipped."""

    contact_id: str
    channel: Channel
    recipient: str
    locale: str
    reason: str

    @property
    def sends(self) -> bool:
        return self.reason == SEND


@dataclass(frozen=True)
class Routing:
    """What an event leads to: its kind (if any), the event-level outcome, the decisions."""

    kind: Kind | None
    outcome: str
    decisions: tuple[Decision, ...] = ()


def notification_kind(event: Event) -> tuple[Kind | None, str]:
    """Which notification an event makes automatically, and why not when none.

    - ``invoice.created`` → invoice, only when the invoice says to send it;
    - ``reminder.due`` → payment reminder;
    - ``payment.received`` → thank-you, for online payments, or manual ones that ask.
    """
    if isinstance(event, InvoiceCreated):
        return (Kind.INVOICE, "routed") if event.data.invoice.send else (None, "manual_only")
    if isinstance(event, ReminderDue):
        return Kind.PAYMENT_REMINDER, "routed"
    if isinstance(event, PaymentReceived):
        payment = event.data.payment
        if payment.method == "online" or payment.notify:
            return Kind.PAYMENT_THANK_YOU, "routed"
        return None, "manual_only"
    raise TypeError(f"not an event: {event!r}")  # pragma: no cover - the union is closed


def sms_decision(customer: CustomerView, contact: ContactView) -> Decision:
    """The SMS outcome for one contact of a customer.

    - SMS switched off for the customer covers all its contacts;
    - the primary contact gets SMS unless switched off;
    - other contact persons only where switched on individually;
    - no mobile number, or one that does not parse to E.164, is skipped.
    """
    recipient = contact.mobile_e164 or ""

    def outcome(reason: str) -> Decision:
        return Decision(contact.contact_id, Channel.SMS, recipient, contact.locale, reason)

    if not customer.sms_enabled:
        return outcome("customer_sms_off")
    enabled = contact.sms_enabled if contact.sms_enabled is not None else contact.is_primary
    if not enabled:
        return outcome("contact_sms_off")
    if not contact.mobile_raw:
        return outcome("no_phone")
    if not contact.mobile_e164:
        return outcome("invalid_phone")
    return outcome(SEND)


def route(event: Event, customer: CustomerView | None) -> Routing:
    """Decide every (contact, channel) outcome of one event."""
    kind, outcome = notification_kind(event)
    if kind is None:
        return Routing(None, outcome)
    if customer is None:
        return Routing(kind, "unknown_customer")
    if not customer.contacts:
        return Routing(kind, "no_contacts")
    return Routing(kind, outcome, tuple(sms_decision(customer, c) for c in customer.contacts))

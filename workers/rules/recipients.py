"""Who is told: pure decisions from an event, the organisation and the customer's directory.

Each (contact, channel, address) gets exactly one decision: ``send``, or the
reason it is skipped. The rules are DESIGN.md's, in the order written there.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.directory import ContactView, CustomerView, OrgView
from schemas.events import Event, InvoiceCreated, PaymentFailed, PaymentReceived, ReminderDue
from schemas.notifications import Channel, Kind
from schemas.phones import to_e164
from schemas.toggles import EMAIL_CATEGORY

#: The go-ahead reason: the notification goes on to render and send.
SEND = "send"


@dataclass(frozen=True)
class Decision:
    """One (contact, channel, address) outcome: ``reason`` is ``send`` or why it was skipped."""

    contact_id: str
    channel: Channel
    recipient: str
    locale: str
    reason: str
    sender: str | None = None

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

    - ``invoice.created`` → invoice, only when the invoice says to send it
      (create-and-send, recurring ones included);
    - ``reminder.due`` → payment reminder;
    - ``payment.received`` → thank-you, for online payments, or manual ones that ask;
    - ``payment.failed`` → payment failed.
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
    if isinstance(event, PaymentFailed):
        return Kind.PAYMENT_FAILED, "routed"
    raise TypeError(f"not an event: {event!r}")  # pragma: no cover - the union is closed


def sms_sender(org: OrgView, default_from: str | None) -> str | None:
    """The organisation's alphanumeric sender name once activated, else its number, else the default."""
    if org.sender_name and org.sender_name_active:
        return org.sender_name
    return org.sender_number or default_from


def sms_decision(
    kind: Kind, org: OrgView, customer: CustomerView, contact: ContactView, default_from: str | None = None
) -> Decision:
    """The SMS outcome for one contact.

    1. The organisation has SMS connected and the kind's SMS template on;
    2. SMS switched off for the customer covers all its contacts;
    3. the primary contact gets SMS unless switched off;
    4. other contact persons only where switched on individually;
       a contact's own choice for this account (preference page): "no" always holds, "yes"
       switches a contact person on (but not over an explicit "off" of their toggle);
    5. no mobile → ``no_phone``; not E.164 in the organisation's region → ``invalid_phone``;
    6. a contact who replied STOP is ``opted_out``.
    (7, credit, is checked atomically at send; 8 picks the sender.)
    """
    number = to_e164(contact.mobile_raw, org.region) if contact.mobile_raw else None

    def outcome(reason: str) -> Decision:
        sender = sms_sender(org, default_from) if reason == SEND else None
        return Decision(contact.contact_id, Channel.SMS, number or "", contact.locale, reason, sender)

    if not org.sms_connected:
        return outcome("sms_not_connected")
    if not org.template_enabled(kind, Channel.SMS):
        return outcome("template_disabled")
    if not customer.sms_enabled:
        return outcome("customer_sms_off")
    if contact.sms_opted_out:
        return outcome("opted_out")
    if contact.account_sms is False:
        return outcome("contact_sms_off")
    default = contact.is_primary or contact.account_sms is True
    enabled = contact.sms_enabled if contact.sms_enabled is not None else default
    if not enabled:
        return outcome("contact_sms_off")
    if not contact.mobile_raw:
        return outcome("no_phone")
    if number is None:
        return outcome("invalid_phone")
    return outcome(SEND)


def email_decisions(kind: Kind, org: OrgView, contact: ContactView, told: set[str]) -> list[Decision]:
    """The email outcome for each address of one contact.

    1. each address has its own notify toggle and per-category toggles;
    2. a contact still pending activation is notified all the same;
    3. within one event, one address is told once (``told`` carries the addresses already told);
    4. the organisation's email template for the kind is on;
    5. an address that hard-bounced is ``suppressed`` until an operator lifts it.
    """
    if not contact.emails:
        return [Decision(contact.contact_id, Channel.EMAIL, "", contact.locale, "no_email")]
    decisions = []
    seen: set[str] = set()
    for email in contact.emails:
        address = email.address.lower()
        if address in seen:
            continue  # one decision per (contact, address); the import refuses repeats anyway
        seen.add(address)
        if not org.template_enabled(kind, Channel.EMAIL):
            reason = "template_disabled"
        elif email.suppressed:
            reason = "suppressed"
        elif not email.notify:
            reason = "email_notify_off"
        elif kind in EMAIL_CATEGORY and not email.category_on(EMAIL_CATEGORY[kind]):
            reason = "category_off"
        elif address in told:
            reason = "duplicate_address"
        else:
            reason = SEND
            told.add(address)
        decisions.append(Decision(contact.contact_id, Channel.EMAIL, address, contact.locale, reason))
    return decisions


def route(
    event: Event,
    org: OrgView,
    customer: CustomerView | None,
    *,
    paid: bool = False,
    default_from: str | None = None,
) -> Routing:
    """Decide every (contact, channel, address) outcome of one event.

    A reminder for an invoice paid in the meantime is recorded for every
    contact and channel as ``already_paid``.
    """
    kind, outcome = notification_kind(event)
    if kind is None:
        return Routing(None, outcome)
    return decide(kind, outcome, org, customer, paid=paid, default_from=default_from)


def decide(
    kind: Kind,
    outcome: str,
    org: OrgView,
    customer: CustomerView | None,
    *,
    paid: bool = False,
    default_from: str | None = None,
) -> Routing:
    """Every (contact, channel, address) decision for a notification of ``kind``.

    ``route`` calls it for automatic notifications; a manual notify calls it
    directly, so every rule but "sent automatically only when…" applies.
    """
    if customer is None:
        return Routing(kind, "unknown_customer")
    if not customer.contacts:
        return Routing(kind, "no_contacts")
    told: set[str] = set()
    decisions: list[Decision] = []
    for contact in customer.contacts:
        decisions.append(sms_decision(kind, org, customer, contact, default_from))
        decisions.extend(email_decisions(kind, org, contact, told))
    if kind == Kind.PAYMENT_REMINDER and paid:
        decisions = [
            Decision(d.contact_id, d.channel, d.recipient, d.locale, "already_paid") for d in decisions
        ]
        outcome = "already_paid"
    return Routing(kind, outcome, tuple(decisions))


def mandate_setup_routing(org: OrgView, customer: CustomerView | None) -> Routing:
    """Who gets the mandate-setup link: by email only (DESIGN.md: "an email with a mandate-setup
    link"), to every contact of the customer by the email rules: notify toggle on, the
    new-invoice category on, one address told once, the organisation's template on."""
    if customer is None:
        return Routing(Kind.MANDATE_SETUP, "unknown_customer")
    if not customer.contacts:
        return Routing(Kind.MANDATE_SETUP, "no_contacts")
    told: set[str] = set()
    decisions = [
        d for contact in customer.contacts for d in email_decisions(Kind.MANDATE_SETUP, org, contact, told)
    ]
    return Routing(Kind.MANDATE_SETUP, "routed", tuple(decisions))

"""Collecting an invoice by Direct Debit: pure decisions, in the order DESIGN.md writes them.

An invoice that asks for Direct Debit is collected with the mandate the event names, else the
customer's active mandate, for its balance, with the invoice id (qualified by the organisation)
as the Idempotency-Key; a customer without a mandate is sent a mandate-setup link instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from schemas.directory import CustomerView, PayerDetails
from schemas.events import Event, Invoice, InvoiceCreated
from schemas.rows import BillingRequestRow

#: The type of the event herald records when it asks a customer to set up a mandate.
MANDATE_SETUP_REQUESTED = "mandate.setup_requested"

#: ISO 4217 minor-unit exponents that are not 2 (every other currency has cents).
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF"), 0),
    **dict.fromkeys(("UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def currency_exponent(currency: str) -> int:
    """How many decimals the currency's minor unit has: JPY 0, KWD 3, most 2."""
    return _EXPONENTS.get(currency.upper(), 2)


def minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("1234.50")`` EUR → 123450; ``Decimal("1235")`` JPY → 1235.

    An amount finer than the currency's minor unit (``12.345`` EUR) is refused with
    ``ValueError``: rounding someone's debit is not ours to decide.
    """
    scaled = amount.scaleb(currency_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is finer than the currency's minor unit")
    return int(scaled)


def idempotency_key(org_id: str, invoice_id: str) -> str:
    """The payment's Idempotency-Key: the invoice id, qualified by the organisation.

    DESIGN.md says "the invoice id"; one GoCardless account serves every organisation, and two
    organisations may both have an invoice ``INV-1``, so the key is ``{org_id}:{invoice_id}``.
    """
    return f"{org_id}:{invoice_id}"


def wants_collection(event: Event) -> bool:
    """An ``invoice.created`` whose ``collection`` is ``"direct_debit"`` is handed to collect."""
    return isinstance(event, InvoiceCreated) and event.data.invoice.collection == "direct_debit"


def mandate_setup_event_id(billing_request_id: str) -> str:
    """The id of the synthetic ``mandate.setup_requested`` event: one per billing request, so a
    redelivered request records and notifies nothing twice."""
    return f"mandate_setup.{billing_request_id}"


class Action(StrEnum):
    """What collect does with an invoice."""

    PAY = "pay"  # create the payment with ``mandate_id``
    REQUEST_MANDATE = "request_mandate"  # Billing Request + Flow, and the link by email
    REDRIVE_MANDATE_SETUP = "redrive_mandate_setup"  # the request exists: hand its link on again
    SKIP = "skip"  # nothing to do; ``reason`` says why (recorded)
    NOTHING = "nothing"  # already done (a redelivery); not recorded again


@dataclass(frozen=True)
class Plan:
    """collect's decision for one invoice."""

    action: Action
    reason: str
    amount_minor: int = 0
    mandate_id: str | None = None
    billing_request_id: str | None = None


@dataclass(frozen=True)
class Facts:
    """What the store knows when collect decides (read in one transaction)."""

    integration_active: bool
    active_mandate: str | None = None
    #: (org_id, customer_id) the event's named mandate is linked to, when we know it.
    named_mandate_owner: tuple[str, str] | None = None
    payment_recorded: bool = False
    #: A still-pending mandate-setup request already made for this invoice.
    outstanding_request: str | None = None


def plan_collection(org_id: str, invoice: Invoice, facts: Facts) -> Plan:
    """Decide how one ``invoice.created`` with ``collection: "direct_debit"`` is collected.

    1. A disconnected GoCardless integration collects nothing (``gocardless_not_connected``).
    2. A payment already recorded for the invoice is not made again (a redelivery).
    3. A balance of zero or less has nothing to collect (``nothing_to_collect``); an amount finer
       than the currency's minor unit is refused (``invalid_amount``).
    4. The mandate the event names is used, unless we know it is another customer's
       (``mandate_not_customers``); else the customer's active mandate.
    5. Without a mandate: a mandate-setup request, unless one for this invoice is still
       outstanding (``mandate_setup_pending``): then its link is handed on again, which tells
       nobody twice (the link's notifications are keyed on the request) but does finish the
       hand-off if a crash cut it short.
    """
    if not facts.integration_active:
        return Plan(Action.SKIP, "gocardless_not_connected")
    if facts.payment_recorded:
        return Plan(Action.NOTHING, "already_collected")
    if invoice.balance <= 0:
        return Plan(Action.SKIP, "nothing_to_collect")
    try:
        amount = minor_units(invoice.balance, invoice.currency)
    except ValueError:
        return Plan(Action.SKIP, "invalid_amount")
    if invoice.mandate_id:
        owner = facts.named_mandate_owner
        if owner is not None and owner != (org_id, invoice.customer_id):
            return Plan(Action.SKIP, "mandate_not_customers")
        return Plan(Action.PAY, "named_mandate", amount, invoice.mandate_id)
    if facts.active_mandate:
        return Plan(Action.PAY, "active_mandate", amount, facts.active_mandate)
    if facts.outstanding_request:
        return Plan(
            Action.REDRIVE_MANDATE_SETUP,
            "mandate_setup_pending",
            billing_request_id=facts.outstanding_request,
        )
    return Plan(Action.REQUEST_MANDATE, "no_mandate", amount)


def payment_metadata(org_id: str, customer_id: str, invoice_id: str) -> dict[str, str]:
    """Metadata on what collect creates at GoCardless (at most 3 keys), so webhooks and sync find
    the organisation, customer and invoice it belongs to."""
    return {"herald_org_id": org_id, "herald_customer_id": customer_id, "herald_invoice_id": invoice_id}


def payment_description(invoice: Invoice) -> str:
    """What the payer sees on the payment: the invoice number."""
    return f"Invoice {invoice.number}"[:100]


def payer_details(customer: CustomerView | None) -> PayerDetails:
    """Prefilled on the mandate-setup page: the customer's name and its primary contact's first
    address with notifications on (else any contact's), so the payer types less."""
    if customer is None:
        return PayerDetails()
    contacts = sorted(customer.contacts, key=lambda c: not c.is_primary)
    emails = [e.address for c in contacts for e in c.emails if e.notify] or [
        e.address for c in contacts for e in c.emails
    ]
    return PayerDetails(email=emails[0] if emails else None, company_name=customer.name or None)


def mandate_setup_payload(request: BillingRequestRow) -> dict[str, Any]:
    """The stored ``mandate.setup_requested`` event (JSON) of a billing request: its invoice and
    customer, and the link render puts in the email."""
    return {
        "type": MANDATE_SETUP_REQUESTED,
        "event_id": mandate_setup_event_id(request.gc_id),
        "org_id": request.org_id,
        "occurred_at": request.created_at.isoformat(),
        "data": {
            "invoice": {"id": request.invoice_id or "", "customer_id": request.customer_id},
            "billing_request": {
                "id": request.gc_id,
                "flow_id": request.flow_id,
                "authorisation_url": request.authorisation_url,
            },
        },
    }


def authorisation_url_of(payload: Mapping[str, Any]) -> str:
    """The mandate-setup link in a stored ``mandate.setup_requested`` event."""
    return str(payload["data"]["billing_request"]["authorisation_url"])


@dataclass(frozen=True)
class EventRef:
    """The keys notifications are stored under, for an event herald made itself."""

    org_id: str
    event_id: str
    invoice_id: str
    customer_id: str

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> EventRef:
        """The keys of a stored event payload."""
        invoice = payload["data"]["invoice"]
        return cls(payload["org_id"], payload["event_id"], invoice["id"], invoice["customer_id"])

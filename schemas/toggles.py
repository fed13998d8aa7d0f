"""Bulk toggle changes: what a request asks (keep, enable all, disable all) and what would move.
The planning rule is ``workers.rules.toggles.plan``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from schemas.notifications import Kind

EMAIL_CATEGORIES: tuple[str, ...] = ("new_invoice", "pending_reminders", "payment_confirmation", "refunds")

#: Which email category toggle governs each notification kind.
EMAIL_CATEGORY: dict[Kind, str] = {
    Kind.INVOICE: "new_invoice",
    Kind.PAYMENT_REMINDER: "pending_reminders",
    Kind.PAYMENT_THANK_YOU: "payment_confirmation",
    # A failed Direct Debit is a call to pay, like a reminder.
    Kind.PAYMENT_FAILED: "pending_reminders",
    # The link is asked for because a new invoice is to be collected: whoever switched new-invoice
    # emails off has said they do not want to hear about new invoices (recorded ``category_off``).
    Kind.MANDATE_SETUP: "new_invoice",
}

#: The skip reasons a contact's (or an operator's) choice causes: history shows the consent row.
CONSENT_REASONS = frozenset(
    {"category_off", "email_notify_off", "contact_sms_off", "customer_sms_off", "opted_out", "suppressed"}
)


def account_sms_toggle(customer_id: str) -> str:
    """The trail's name of a customer account's own SMS switch (the upstream's customer record)."""
    return f"customer {customer_id} account sms"


def toggles_behind(reason: str, kind: str, recipient: str, customer_id: str) -> tuple[str, ...]:
    """The toggles (named as the consent trail names them) whose change explains ``reason`` for a
    notification of ``kind`` to ``recipient``; ``()`` for a reason no toggle causes."""
    if reason == "category_off":
        category = next((c for k, c in EMAIL_CATEGORY.items() if k == kind), None)
        return (f"{recipient} {category}",) if category else ()
    if reason == "email_notify_off":
        return (f"{recipient} notify",)
    if reason == "suppressed":
        return (f"{recipient} suppressed",)
    if reason == "contact_sms_off":
        return ("sms", f"customer {customer_id} sms")
    if reason == "customer_sms_off":
        return (account_sms_toggle(customer_id),)
    if reason == "opted_out":
        return ("sms_opted_out",)
    return ()


class Action(StrEnum):
    KEEP = "keep"
    ENABLE = "enable"
    DISABLE = "disable"


@dataclass(frozen=True)
class ToggleRequest:
    """What to do with each toggle; email toggles apply to every address of a contact."""

    sms: Action = Action.KEEP
    notify: Action = Action.KEEP
    categories: dict[str, Action] = field(default_factory=dict)

    def is_noop(self) -> bool:
        return self.sms == self.notify == Action.KEEP and all(
            a == Action.KEEP for a in self.categories.values()
        )


@dataclass(frozen=True)
class ContactToggles:
    """A contact's current toggles."""

    contact_id: str
    is_primary: bool
    sms_enabled: bool | None  # None: the default for the role
    emails: dict[str, tuple[bool, dict[str, bool]]]  # address -> (notify, categories)


@dataclass(frozen=True)
class Change:
    """One toggle that moves: ``what`` names it, with its old and new value."""

    what: str
    old: bool
    new: bool

    def __str__(self) -> str:
        return f"{self.what}: {'on' if self.old else 'off'} → {'on' if self.new else 'off'}"

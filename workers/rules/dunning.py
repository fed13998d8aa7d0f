"""Collection-aware dunning, pure: no "please pay" while a Direct Debit payment for the invoice is
on its way, and reminders that ask only for what is still owed.

- A reminder is deferred while one of the invoice's GoCardless payments is ``pending_submission``
  or ``submitted`` (the money is on its way).
- It is deferred while a ``failed`` payment has ``will_attempt_retry`` with a known
  ``charge_date``, until that date plus the organisation's grace period has passed.
- A ``failed`` payment with no retry defers nothing: the schedule resumes (and the customer is
  told the payment failed).
- The amount a reminder asks for is the balance less the payments recorded so far (never below
  zero); a reminder says it only when it is less than the balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

#: GoCardless statuses of a payment on its way to being collected.
ON_ITS_WAY = frozenset({"pending_submission", "submitted"})
#: The grace period after a retry's charge date, in days, unless the organisation sets its own.
DEFAULT_GRACE_DAYS = 3
MAX_GRACE_DAYS = 60


@dataclass(frozen=True)
class Collection:
    """One GoCardless payment of the invoice as herald last saw it."""

    payment_id: str
    status: str
    charge_date: date | None = None
    will_attempt_retry: bool = False


@dataclass(frozen=True)
class Deferral:
    """Why a reminder waits: the payment, its status, and the day after which it may go (None:
    for as long as the payment is on its way)."""

    payment_id: str
    status: str
    until: date | None


def deferral(payments: Iterable[Collection], today: date, grace_days: int) -> Deferral | None:
    """Whether a reminder due ``today`` (the organisation's local date) waits for a payment."""
    for p in payments:
        if p.status in ON_ITS_WAY:
            until = p.charge_date + timedelta(days=grace_days) if p.charge_date else None
            return Deferral(p.payment_id, p.status, until)
    for p in payments:
        if p.status == "failed" and p.will_attempt_retry and p.charge_date is not None:
            until = p.charge_date + timedelta(days=grace_days)
            if today <= until:
                return Deferral(p.payment_id, "failed_will_retry", until)
    return None


def outstanding(balance: Decimal, paid: Decimal) -> Decimal | None:
    """What a reminder asks for after partial payments; None when nothing was paid yet."""
    if paid <= 0:
        return None
    return max(balance - paid, Decimal(0))

"""Notifications and their delivery statuses, with the allowed transitions.

A notification moves ``pending → sending → sent → delivered``, or ends in
``skipped``, ``failed`` or ``undelivered``. A status never moves back: a late
``sent`` after ``delivered`` changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a notification says."""

    INVOICE = "invoice"
    PAYMENT_REMINDER = "payment_reminder"
    PAYMENT_THANK_YOU = "payment_thank_you"
    PAYMENT_FAILED = "payment_failed"
    MANDATE_SETUP = "mandate_setup"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNDELIVERED = "undelivered"


#: How far along each status is; terminal statuses share the top rank.
_RANK: dict[Status, int] = {
    Status.PENDING: 0,
    Status.SENDING: 1,
    Status.SENT: 2,
    Status.DELIVERED: 3,
    Status.UNDELIVERED: 3,
    Status.FAILED: 3,
    Status.SKIPPED: 3,
}

TERMINAL: frozenset[Status] = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.SKIPPED})


def can_move(current: Status, new: Status) -> bool:
    """Whether a notification in ``current`` may move to ``new``.

    Only forward moves are allowed; a terminal status is final; the same
    status again is not a move (the caller treats it as already applied).
    """
    if current == new or current in TERMINAL:
        return False
    # A provider can report 'failed' straight from 'sending' or 'sent'.
    return _RANK[new] > _RANK[current]

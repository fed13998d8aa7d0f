"""The reminder rules, pure: which reminder of an invoice goes out now, and what it says.

A reminder fires at ``due date + offset days``, at ``HERALD_REMINDER_HOUR`` o'clock UTC. Of the
offsets whose time has come, only the latest one that was never decided is published; the
earlier ones it overtook (the scheduler was down, or the invoice arrived late) are superseded,
never sent, so downtime gives one catch-up reminder and never a burst. A paid invoice gets none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from schemas.rows import InvoiceRow

#: Offsets an organisation may set, in days from the due date (the contract's bound).
MAX_OFFSET_DAYS = 365


@dataclass(frozen=True)
class Plan:
    """What to do for one invoice now: the offset to publish (or none), and the ones it supersedes."""

    publish: int | None = None
    supersede: tuple[int, ...] = field(default=())


def fire_time(due_date: date, offset_days: int, hour: int) -> datetime:
    """When the reminder ``offset_days`` from ``due_date`` is due: that day at ``hour`` UTC."""
    return datetime.combine(due_date + timedelta(days=offset_days), time(hour), tzinfo=UTC)


def plan(
    due_date: date, *, paid: bool, offsets: Iterable[int], decided: Iterable[int], now: datetime, hour: int
) -> Plan:
    """Which reminder of an invoice to publish now.

    - A paid invoice gets no reminder.
    - An offset whose fire time has not come yet waits.
    - Of the offsets whose time has come, the latest one is published, once: ``decided`` holds
      the offsets already claimed, published or superseded.
    - The earlier ones it overtook and that were never decided are superseded, not sent.
    """
    if paid:
        return Plan()
    done = set(decided)
    came = sorted(o for o in set(offsets) if fire_time(due_date, o, hour) <= now)
    if not came:
        return Plan()
    latest = came[-1]
    overtaken = tuple(o for o in came[:-1] if o not in done)
    return Plan(publish=None if latest in done else latest, supersede=overtaken)


def reminder_event_id(invoice_id: str, offset_days: int) -> str:
    """The reminder's event id: the same (invoice, offset) always gets the same one, so a
    re-publish after a crash is deduplicated by route like any re-published event.

    Event ids are unique per organisation; the offset is the last ``_``-part (it has none of its
    own), so no two (invoice, offset) pairs share an id. Too long an invoice id is hashed.
    """
    event_id = f"rem_{invoice_id}_{offset_days}"
    if len(event_id) <= 200:
        return event_id
    return f"rem_{hashlib.sha256(invoice_id.encode()).hexdigest()}_{offset_days}"


def reminder_event(
    invoice: InvoiceRow,
    offset_days: int,
    *,
    hour: int,
    template: str | None = None,
) -> dict[str, Any]:
    """The ``reminder.due`` event (JSON) for one (invoice, offset), identical every time it is built.

    It repeats the invoice word for word as its ``invoice.created`` carried it. ``occurred_at`` is
    the fire time, not the clock, so a re-publish is the same event. The organisation's template
    key for the offset, when it has one, travels as ``data.reminder.template`` (an added field) for
    render to pick the variant.
    """
    reminder: dict[str, Any] = {"offset_days": offset_days}
    if template:
        reminder["template"] = template
    return {
        "type": "reminder.due",
        "event_id": reminder_event_id(invoice.invoice_id, offset_days),
        "org_id": invoice.org_id,
        "occurred_at": fire_time(invoice.due_date, offset_days, hour).isoformat().replace("+00:00", "Z"),
        "data": {"invoice": dict(invoice.invoice), "reminder": reminder},
    }

"""The reminder rules, pure: which reminder of an invoice goes out now, and what it says.

A reminder fires on ``due date + offset days`` (local calendar days; ``+3b``: business days), at
the organisation's reminder hour in its own time zone (``ReminderCalendar``): one instant per
(invoice, offset), also on DST nights (``workers.rules.local_time.local_instant``). An organisation
that counts business days has a reminder falling on a weekend or public holiday moved to the next
business day (``workers.rules.business_days``), and the move travels with it. Of the
offsets whose time has come, only the latest one that was never decided is published; the
earlier ones it overtook (the scheduler was down, or the invoice arrived late) are superseded,
never sent, so downtime gives one catch-up reminder and never a burst. A paid invoice gets none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schemas.rows import InvoiceRow
from workers.rules.business_days import Closed, Moved, add_business_days, next_business_day
from workers.rules.local_time import local_instant

#: Offsets an organisation may set, in days from the due date (the contract's bound).
MAX_OFFSET_DAYS = 365


@dataclass(frozen=True)
class Plan:
    """What to do for one invoice now: the offset to publish (or none), and the ones it supersedes."""

    publish: int | None = None
    supersede: tuple[int, ...] = field(default=())


@dataclass(frozen=True)
class ReminderCalendar:
    """An organisation's reminder clock: its zone, its local reminder hour, its business days
    (``closed``: None when it does not count them) and which offsets count business days."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    hour: int = 9
    closed: Closed | None = None
    business_offsets: frozenset[int] = frozenset()
    #: Days after a GoCardless retry's charge date before reminders resume (``workers.rules.dunning``).
    grace_days: int = 3


@dataclass(frozen=True)
class Fire:
    """When one reminder goes: the instant (UTC), its local date, and a move to a business day."""

    at: datetime
    local_date: date
    moved_from: date | None = None
    reason: str | None = None


def fire(due_date: date, offset_days: int, calendar: ReminderCalendar) -> Fire:
    """When the reminder ``offset_days`` from ``due_date`` goes for an organisation.

    - Offsets count local calendar days from the due date, or business days for the offsets in
      ``calendar.business_offsets``.
    - A date that is not a business day (the organisation counts them) moves to the next one.
    - It goes at the organisation's reminder hour on that local date.
    """
    closed = calendar.closed
    if offset_days in calendar.business_offsets and closed is not None:
        day = add_business_days(due_date, offset_days, closed)
    else:
        day = due_date + timedelta(days=offset_days)
    moved = next_business_day(day, closed) if closed is not None else Moved(to=day)
    at = local_instant(moved.to, time(calendar.hour), calendar.zone)
    return Fire(at=at, local_date=moved.to, moved_from=moved.from_, reason=moved.reason)


def fire_time(due_date: date, offset_days: int, hour: int | ReminderCalendar) -> datetime:
    """When the reminder ``offset_days`` from ``due_date`` is due (an hour alone: UTC)."""
    calendar = hour if isinstance(hour, ReminderCalendar) else ReminderCalendar(hour=hour)
    return fire(due_date, offset_days, calendar).at


def plan(
    due_date: date,
    *,
    paid: bool,
    offsets: Iterable[int],
    decided: Iterable[int],
    now: datetime,
    hour: int | ReminderCalendar,
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
    hour: int | ReminderCalendar,
    template: str | None = None,
    outstanding: Decimal | None = None,
) -> dict[str, Any]:
    """The ``reminder.due`` event (JSON) for one (invoice, offset), identical every time it is built.

    It repeats the invoice word for word as its ``invoice.created`` carried it. ``occurred_at`` is
    the fire time, not the clock, so a re-publish is the same event. The organisation's template
    key for the offset, when it has one, travels as ``data.reminder.template`` (an added field) for
    render to pick the variant. A partly paid invoice's reminder says what is still owed
    (``outstanding``, an added field render asks for). A reminder moved to a business day says
    from which date and why (``moved_from``, ``moved_reason``: added fields, kept in history).
    """
    calendar = hour if isinstance(hour, ReminderCalendar) else ReminderCalendar(hour=hour)
    when = fire(invoice.due_date, offset_days, calendar)
    reminder: dict[str, Any] = {"offset_days": offset_days}
    if template:
        reminder["template"] = template
    if outstanding is not None:
        reminder["outstanding"] = str(outstanding)
    if when.moved_from is not None:
        reminder["moved_from"] = when.moved_from.isoformat()
        reminder["moved_reason"] = when.reason
    return {
        "type": "reminder.due",
        "event_id": reminder_event_id(invoice.invoice_id, offset_days),
        "org_id": invoice.org_id,
        "occurred_at": when.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": {"invoice": dict(invoice.invoice), "reminder": reminder},
    }

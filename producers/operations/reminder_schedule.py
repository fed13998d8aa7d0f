"""An invoice's reminder schedule, as ``herald reminders show`` and ``GET /invoices/{id}/reminders``
show it: every offset of its organisation, planned, moved, deferred, held, sent or superseded, with
its local and UTC time and its reason."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from infra.bootstrap import Services
from infra.store.organisations import org_settings
from infra.store.reminders import load_business_offsets, load_invoice, load_offsets, reminder_rows
from infra.store.tables import held_notifications, notifications
from producers.scheduler import reminder_calendar
from workers.rules.scheduling import fire, reminder_event_id

#: What each stored decision reads as.
_SHOWN = {"published": "sent", "claimed": "sending", "superseded": "superseded"}


def reminder_schedule(services: Services, org_id: str, invoice_id: str) -> list[dict[str, Any]] | None:
    """One line per offset, in offset order (None: the organisation has no such invoice)."""
    with services.reading() as conn:
        invoice = load_invoice(conn, org_id, invoice_id)
        if invoice is None:
            return None
        offsets = load_offsets(conn, org_id).get(org_id, {})
        business = load_business_offsets(conn, org_id).get(org_id, frozenset())
        calendar = reminder_calendar(
            org_settings(conn, org_id),
            default_zone=services.settings.default_timezone,
            default_hour=services.settings.reminder_hour,
            business_offsets=business,
        )
        decided = {r["offset_days"]: r for r in reminder_rows(conn, org_id, invoice_id)}
        held = {
            r.event_id: r.release_at
            for r in conn.execute(
                select(notifications.c.event_id, held_notifications.c.release_at)
                .join(held_notifications, held_notifications.c.notification_id == notifications.c.id)
                .where(
                    notifications.c.org_id == org_id,
                    notifications.c.invoice_id == invoice_id,
                    held_notifications.c.released_at.is_(None),
                )
            )
        }
    lines: list[dict[str, Any]] = []
    for offset in sorted(set(offsets) | set(decided)):
        when = fire(invoice.due_date, offset, calendar)
        row = decided.get(offset)
        state = "planned" if row is None else _SHOWN.get(row["status"], row["status"])
        reason = None
        if when.moved_from is not None:
            reason = f"moved from {when.moved_from.isoformat()} ({when.reason})"
        if row is not None and row["status"] == "deferred_collection_pending":
            after = f", until after {row['resume_after'].isoformat()}" if row["resume_after"] else ""
            reason = f"{row['moved_reason']}{after}"
        if reminder_event_id(invoice_id, offset) in held:
            state = "held"
            reason = f"quiet hours: goes at {_iso(held[reminder_event_id(invoice_id, offset)])}"
        lines.append(
            {
                "offset": f"{offset:+d}{'b' if offset in business else ''}",
                "template": offsets.get(offset),
                "state": state,
                "local": when.at.astimezone(calendar.zone).isoformat(),
                "utc": _iso(when.at),
                "reason": reason,
            }
        )
    return lines


def _iso(value: Any) -> str:
    """UTC, ``Z``-suffixed (SQLite hands back naive UTC)."""
    text = value.isoformat() if value.tzinfo else value.isoformat() + "+00:00"
    return text.replace("+00:00", "Z")

"""Events and notifications: idempotent records, the send claim, status moves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection

from infra.errors import MalformedMessage
from infra.store.db import insert_ignore
from infra.store.tables import events, notifications, status_changes
from schemas.events import Event
from schemas.notifications import Status, can_move
from schemas.rows import NotificationRow

_NS = uuid.UUID("5b1f6f0e-4d0c-4d52-9a55-6865726c6421")


def notification_id(org_id: str, event_id: str, contact_id: str, channel: str, recipient: str) -> str:
    """A stable id: the same (event, contact, channel, address) always gets the same one."""
    return "ntf_" + uuid.uuid5(_NS, "\x1f".join((org_id, event_id, contact_id, channel, recipient))).hex


def record_event(conn: Connection, event: Event, payload: dict[str, Any], outcome: str) -> bool:
    """Store an event once; False when it was already stored (a redelivery or a re-publish)."""
    result = conn.execute(
        insert_ignore(conn, events).values(
            org_id=event.org_id,
            event_id=event.event_id,
            type=event.type,
            invoice_id=event.invoice_id,
            customer_id=event.customer_id,
            occurred_at=event.occurred_at,
            received_at=datetime.now(UTC),
            outcome=outcome,
            payload=payload,
        )
    )
    return bool(result.rowcount)


class EventKeys(Protocol):
    """What notifications are stored under: an upstream event, or one herald made itself."""

    @property
    def org_id(self) -> str: ...
    @property
    def event_id(self) -> str: ...
    @property
    def invoice_id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...


@dataclass(frozen=True)
class NewNotification:
    """A decided notification about to be stored."""

    contact_id: str
    kind: str
    channel: str
    recipient: str
    locale: str
    reason: str
    sends: bool
    sender: str | None = None


def record_notifications(conn: Connection, event: EventKeys, items: list[NewNotification]) -> list[str]:
    """Store the decisions of an event (existing ones are kept as they are).

    Returns the ids of this event's notifications (SMS and email) that are still
    ``pending``, so a redelivered event re-drives exactly the work not yet done.
    """
    now = datetime.now(UTC)
    if items:
        # One executemany: a compiled statement per row costs more than the insert itself.
        conn.execute(
            insert_ignore(conn, notifications),
            [
                {
                    "id": notification_id(event.org_id, event.event_id, i.contact_id, i.channel, i.recipient),
                    "org_id": event.org_id,
                    "event_id": event.event_id,
                    "invoice_id": event.invoice_id,
                    "customer_id": event.customer_id,
                    "contact_id": i.contact_id,
                    "kind": i.kind,
                    "channel": i.channel,
                    "recipient": i.recipient,
                    "locale": i.locale,
                    "reason": i.reason,
                    "sender": i.sender,
                    "status": Status.PENDING if i.sends else Status.SKIPPED,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in items
            ],
        )
    rows = conn.execute(
        select(notifications.c.id).where(
            notifications.c.org_id == event.org_id,
            notifications.c.event_id == event.event_id,
            notifications.c.status == Status.PENDING,
        )
    ).all()
    return [r.id for r in rows]


def load_notification(conn: Connection, nid: str) -> NotificationRow | None:
    """One notification row, or ``None``."""
    row = conn.execute(select(notifications).where(notifications.c.id == nid)).mappings().first()
    return NotificationRow(**row) if row else None


def load_event_payload(conn: Connection, org_id: str, event_id: str) -> dict[str, Any] | None:
    """The stored event JSON."""
    row = conn.execute(
        select(events.c.payload).where(events.c.org_id == org_id, events.c.event_id == event_id)
    ).first()
    return row.payload if row else None


def store_rendered(conn: Connection, nid: str, body: str) -> None:
    """Keep the rendered message so every retry sends the same text (the sender stays as routed)."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.body.is_(None))
        .values(body=body, updated_at=datetime.now(UTC))
    )


def store_rendered_email(conn: Connection, nid: str, subject: str, text: str, html: str) -> None:
    """Keep the rendered email (``body`` holds the plain-text part) so every retry sends the same."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.body.is_(None))
        .values(body=text, subject=subject, html=html, updated_at=datetime.now(UTC))
    )


def claim_for_sending(conn: Connection, nid: str) -> bool:
    """Record the attempt before calling the provider (``pending → sending``).

    Atomic: of two workers holding the same message, only one wins.
    """
    now = datetime.now(UTC)
    result = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.status == Status.PENDING)
        .values(
            status=Status.SENDING,
            attempts=notifications.c.attempts + 1,
            attempted_at=now,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


def skip_pending(conn: Connection, nid: str) -> bool:
    """``pending → skipped`` at send time (e.g. not enough SMS credit); final at once, so no
    duplicate message can still send it. The decision's reason stays as routing recorded it."""
    result = conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.status == Status.PENDING)
        .values(status=Status.SKIPPED, updated_at=datetime.now(UTC))
    )
    return bool(result.rowcount)


def release_claim(conn: Connection, nid: str) -> None:
    """``sending → pending`` when the provider certainly did not accept the message."""
    conn.execute(
        update(notifications)
        .where(
            notifications.c.id == nid,
            notifications.c.status == Status.SENDING,
            notifications.c.provider_id.is_(None),
        )
        .values(status=Status.PENDING, updated_at=datetime.now(UTC))
    )


def record_provider_id(conn: Connection, nid: str, provider_id: str) -> None:
    """The provider accepted: from now on a redelivery must not send again."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.provider_id.is_(None))
        .values(provider_id=provider_id, updated_at=datetime.now(UTC))
    )


def record_refusal(conn: Connection, nid: str, error_code: int | None) -> None:
    """The provider refused for good: remember it so a redelivery does not resend."""
    conn.execute(
        update(notifications)
        .where(notifications.c.id == nid, notifications.c.provider_id.is_(None))
        .values(error_code=error_code if error_code is not None else 0, updated_at=datetime.now(UTC))
    )


@dataclass(frozen=True)
class StatusChange:
    """A reported delivery status for one notification."""

    notification_id: str
    status: Status
    source: str
    occurred_at: datetime
    provider_id: str | None = None
    error_code: int | None = None
    detail: str | None = None


#: How a status report that did not move its notification starts its ``detail`` in the timeline.
IGNORED_PREFIX = "ignored: already "


def ignored_detail(current: Status, detail: str | None) -> str:
    """The detail kept with a report that arrived after ``current`` and so changed nothing (pure):
    ``ignored: already delivered``, then the report's own detail, if any."""
    said = f"{IGNORED_PREFIX}{current.value}"
    return f"{said}; {detail}" if detail else said


def apply_status(conn: Connection, change: StatusChange) -> bool:
    """Record a status report and move the notification forward if allowed.

    Every report is kept once (unique per notification and status); the
    notification's current status only ever moves forward. A report that cannot move it
    (``failed`` after ``delivered``, a late ``sent``) is kept with its detail saying so
    (``ignored: already delivered``), so the timeline never shows it as if it applied.
    Returns whether the current status moved.
    """
    row = conn.execute(
        select(notifications.c.status).where(notifications.c.id == change.notification_id)
    ).first()
    if row is None:
        raise MalformedMessage(f"status report for unknown notification {change.notification_id}")
    values: dict[str, Any] = {"status": change.status, "updated_at": datetime.now(UTC)}
    if change.provider_id:
        values["provider_id"] = change.provider_id
    if change.error_code is not None:
        values["error_code"] = change.error_code
    current = Status(row.status)
    moved = False
    while can_move(current, change.status):
        result = conn.execute(
            update(notifications)
            .where(and_(notifications.c.id == change.notification_id, notifications.c.status == current))
            .values(**values)
        )
        if result.rowcount == 1:
            moved = True
            break
        # Another report moved it since we read it (PostgreSQL, READ COMMITTED: ``sent`` and
        # ``delivered`` of one SMS recorded at once): judge again from where it is now, or a
        # ``delivered`` would be lost behind a ``sent``. Statuses only move forward, so this ends.
        current = Status(
            conn.execute(
                select(notifications.c.status).where(notifications.c.id == change.notification_id)
            ).scalar_one()
        )
    # Recorded after the move, so the row can say whether it applied. The same status again is
    # not "ignored": it is the one applied (a duplicate, which the unique key drops anyway).
    detail = change.detail
    if not moved and current != change.status:
        detail = ignored_detail(current, change.detail)
    conn.execute(
        insert_ignore(conn, status_changes).values(
            notification_id=change.notification_id,
            status=change.status,
            provider_id=change.provider_id,
            error_code=change.error_code,
            detail=(detail or "")[:500] or None,
            source=change.source,
            occurred_at=change.occurred_at,
            recorded_at=datetime.now(UTC),
        )
    )
    return moved


class SweepWindow(Protocol):
    """The instants a sweep compares rows with (``workers.rules.sweep.SweepWindow``)."""

    @property
    def sent_before(self) -> datetime: ...
    @property
    def sent_after(self) -> datetime: ...
    @property
    def swept_before(self) -> datetime: ...


def _due_for_sweep(window: SweepWindow) -> Any:
    """``workers.rules.sweep.due_for_sweep`` in SQL."""
    c = notifications.c
    return and_(
        c.channel == "sms",
        c.status == Status.SENT,
        c.provider_id.is_not(None),
        c.updated_at >= window.sent_after,
        c.updated_at <= window.sent_before,
        or_(c.swept_at.is_(None), c.swept_at < window.swept_before),
    )


def sweep_candidates(conn: Connection, window: SweepWindow, limit: int) -> list[NotificationRow]:
    """Up to ``limit`` SMS due for a status sweep, longest unasked first (never asked: by age)."""
    c = notifications.c
    rows = conn.execute(
        select(notifications)
        .where(_due_for_sweep(window))
        .order_by(func.coalesce(c.swept_at, c.updated_at), c.id)
        .limit(limit)
    ).mappings()
    return [NotificationRow(**r) for r in rows]


def claim_for_sweep(conn: Connection, nid: str, window: SweepWindow, now: datetime) -> bool:
    """Mark the notification asked now, if it is still due: of two sweeps, one asks."""
    result = conn.execute(
        update(notifications).where(notifications.c.id == nid, _due_for_sweep(window)).values(swept_at=now)
    )
    return bool(result.rowcount)

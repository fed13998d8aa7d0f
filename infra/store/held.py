"""Held notifications: decided inside their recipient's quiet hours, kept in the store until their
window opens, then released by the scheduler in the order they were decided, once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection

from infra.store import status_outbox
from infra.store.batches import in_chunks, unique
from infra.store.db import insert_ignore
from infra.store.keys import IDS, ids_where
from infra.store.tables import contacts, held_notifications, notifications, organisations, status_changes
from schemas.notifications import Status

HELD = "held"
RELEASED = "released"


@dataclass(frozen=True)
class HoldCandidate:
    """What the quiet-hour rule needs of one pending notification."""

    notification_id: str
    org_id: str
    kind: str
    channel: str
    contact_timezone: str | None
    contact_e164: str | None
    org_timezone: str | None
    send_windows: dict[str, str]
    held: bool  # it has a hold already (released or not)


_CANDIDATES = (
    select(
        notifications.c.id,
        notifications.c.org_id,
        notifications.c.kind,
        notifications.c.channel,
        contacts.c.timezone.label("contact_timezone"),
        contacts.c.mobile_e164,
        organisations.c.timezone.label("org_timezone"),
        organisations.c.send_windows,
        held_notifications.c.id.label("hold_id"),
    )
    .select_from(
        notifications.outerjoin(
            contacts,
            and_(
                contacts.c.org_id == notifications.c.org_id,
                contacts.c.contact_id == notifications.c.contact_id,
            ),
        )
        .outerjoin(organisations, organisations.c.org_id == notifications.c.org_id)
        .outerjoin(held_notifications, held_notifications.c.notification_id == notifications.c.id)
    )
    .where(ids_where(notifications.c.id))
)


def hold_candidates(conn: Connection, ids: Sequence[str]) -> dict[str, HoldCandidate]:
    """For each of ``ids``, its kind and channel, its contact's zone and number, its organisation's
    zone and send windows, and whether it was held before: one ``SELECT`` per 500."""
    found: dict[str, HoldCandidate] = {}
    for chunk in in_chunks(unique(ids)):
        rows = conn.execute(_CANDIDATES, {IDS: chunk})
        for r in rows:
            found[r.id] = HoldCandidate(
                notification_id=r.id,
                org_id=r.org_id,
                kind=r.kind,
                channel=r.channel,
                contact_timezone=r.contact_timezone,
                contact_e164=r.mobile_e164,
                org_timezone=r.org_timezone,
                send_windows=dict(r.send_windows or {}),
                held=r.hold_id is not None,
            )
    return found


def unreleased(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Of ``ids``, those held and not yet released."""
    found: set[str] = set()
    for chunk in in_chunks(unique(ids)):
        rows = conn.execute(
            select(held_notifications.c.notification_id).where(
                held_notifications.c.notification_id.in_(chunk), held_notifications.c.released_at.is_(None)
            )
        )
        found.update(rows.scalars())
    return found


def hold(conn: Connection, items: Sequence[tuple[str, str, datetime]], now: datetime) -> None:
    """Hold each ``(notification id, org id, release_at)``, in the order given (the order decided),
    and record ``held`` with its release time in its history. A notification held before keeps its
    hold."""
    if not items:
        return
    conn.execute(
        insert_ignore(conn, held_notifications),
        [{"notification_id": n, "org_id": o, "release_at": at, "decided_at": now} for n, o, at in items],
    )
    conn.execute(
        insert_ignore(conn, status_changes),
        [
            {
                "notification_id": n,
                "status": HELD,
                "detail": f"quiet hours: held until {at.isoformat()}",
                "source": "quiet_hours",
                "occurred_at": now,
                "recorded_at": now,
            }
            for n, _, at in items
        ],
    )
    # Told upstream in the same transaction (webhooks, the status exchange).
    status_outbox.held_many(conn, {n: at for n, _, at in items}, "quiet_hours", at=now)


def due_holds(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Holds not yet released whose time has come, in the order they were decided, with what the
    release checks: the notification's status, kind, channel, invoice and contact."""
    rows = conn.execute(
        select(
            held_notifications.c.notification_id,
            held_notifications.c.release_at,
            notifications.c.org_id,
            notifications.c.invoice_id,
            notifications.c.contact_id,
            notifications.c.kind,
            notifications.c.channel,
            notifications.c.status,
            contacts.c.sms_opted_out,
        )
        .select_from(
            held_notifications.join(
                notifications, notifications.c.id == held_notifications.c.notification_id
            ).outerjoin(
                contacts,
                and_(
                    contacts.c.org_id == notifications.c.org_id,
                    contacts.c.contact_id == notifications.c.contact_id,
                ),
            )
        )
        .where(held_notifications.c.released_at.is_(None), held_notifications.c.release_at <= now)
        .order_by(held_notifications.c.id)
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


def settle_holds(conn: Connection, outcomes: Sequence[tuple[str, str]], now: datetime) -> set[str]:
    """End each hold ``(notification id, outcome)`` that is still open; the ids this call ended
    (of several schedulers, one ends each). An outcome other than ``released`` skips the
    notification with that outcome as its reason (it is settled unsent)."""
    ended: set[str] = set()
    for nid, outcome in outcomes:
        result = conn.execute(
            update(held_notifications)
            .where(held_notifications.c.notification_id == nid, held_notifications.c.released_at.is_(None))
            .values(released_at=now, outcome=outcome)
        )
        if not result.rowcount:
            continue
        ended.add(nid)
        if outcome == RELEASED:
            continue
        skipped = conn.execute(
            update(notifications)
            .where(notifications.c.id == nid, notifications.c.status == Status.PENDING)
            .values(status=Status.SKIPPED, reason=outcome, updated_at=now)
        )
        if skipped.rowcount:
            conn.execute(
                insert_ignore(conn, status_changes).values(
                    notification_id=nid,
                    status=Status.SKIPPED,
                    detail=f"held, then settled at release: {outcome}",
                    source="quiet_hours",
                    occurred_at=now,
                    recorded_at=now,
                )
            )
    return ended

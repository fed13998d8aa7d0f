"""The status outbox: every outward status event (``schemas.status_events``) is written here in the
caller's transaction, beside the change it reports, so an event exists exactly when its change
committed. The ``webhooks`` process fans rows out to webhook deliveries and publishes them to the
``PREFIX.notifications`` exchange.

Each row's ``msg_id`` is derived from what it reports (``notification.sent`` of ``ntf_…``), so
writing it again (a redelivered message, a retried transaction) keeps one row: ``INSERT … ON
CONFLICT DO NOTHING``, one executemany per batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from infra.masking import mask_recipient
from infra.store.batches import in_chunks, unique
from infra.store.db import insert_ignore
from infra.store.keys import IDS, among, ids_where
from infra.store.tables import notifications, status_outbox
from schemas.notifications import Kind, Status
from schemas.status_events import STATUS_SCHEMA_VERSION, StatusEventType

T = StatusEventType

#: The event a notification's status reports (``pending``/``sending`` report nothing).
STATUS_EVENTS: dict[Status, StatusEventType] = {
    Status.SENT: T.NOTIFICATION_SENT,
    Status.DELIVERED: T.NOTIFICATION_DELIVERED,
    Status.FAILED: T.NOTIFICATION_FAILED,
    Status.UNDELIVERED: T.NOTIFICATION_UNDELIVERED,
    Status.SKIPPED: T.NOTIFICATION_DECIDED,  # skipped at send time: a decision, with its reason
}


@dataclass(frozen=True)
class OutboxEvent:
    """One outward event about to be written: ``key`` says what it reports, once."""

    key: str
    org_id: str
    type: StatusEventType
    subject: str
    data: dict[str, Any]


def message_id(key: str) -> str:
    """``msg_`` + 32 hex: the same key (type and what it is about) always gets the same id (pure)."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _iso(value: datetime | None) -> str:
    value = value or datetime.now(UTC)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def write(conn: Connection, items: Sequence[OutboxEvent]) -> int:
    """Write outward events in the caller's transaction, each once; returns how many were new."""
    if not items:
        return 0
    now = datetime.now(UTC)
    stamp = _iso(now)
    rows = []
    for item in items:
        msg_id = message_id(item.key)
        payload = {
            "type": item.type.value,
            "version": STATUS_SCHEMA_VERSION,
            "id": msg_id,
            "timestamp": stamp,
            "data": item.data,
        }
        rows.append(
            {
                "msg_id": msg_id,
                "org_id": item.org_id,
                "type": item.type.value,
                "subject": item.subject[:200],
                "payload": payload,
                "created_at": now,
            }
        )
    result = conn.execute(insert_ignore(conn, status_outbox), rows)
    return max(result.rowcount, 0)


# -- notifications ---------------------------------------------------------------------------------
def _notification_data(row: Mapping[str, Any], status: str, at: datetime | None) -> dict[str, Any]:
    return {
        "org_id": row["org_id"],
        "invoice_id": row["invoice_id"],
        "customer_id": row["customer_id"],
        "contact_id": row["contact_id"],
        "event_id": row["event_id"],
        "notification_id": row["id"],
        "kind": row["kind"],
        "channel": row["channel"],
        "recipient": mask_recipient(row["recipient"]),
        "status": status,
        "occurred_at": _iso(at),
    }


def decisions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """``notification.decided`` for each notification row routing just stored (its columns as
    inserted: ``status`` pending means send, skipped means skip with its ``reason``)."""
    write(
        conn,
        [
            OutboxEvent(
                key=f"decided:{r['id']}",
                org_id=r["org_id"],
                type=T.NOTIFICATION_DECIDED,
                subject=r["id"],
                data=_notification_data(r, r["status"], r["created_at"])
                | {"decision": "send" if r["status"] == Status.PENDING else "skip", "reason": r["reason"]},
            )
            for r in rows
        ],
    )


@dataclass(frozen=True)
class Applied:
    """A status that now stands on a notification (a moved report, or the skip it already had)."""

    notification_id: str
    status: Status
    occurred_at: datetime
    provider_id: str | None = None
    error_code: int | None = None
    detail: str | None = None


def statuses(conn: Connection, applied: Sequence[Applied]) -> None:
    """The outward events of reported statuses that stand (one ``SELECT`` of their notifications
    per 500, one insert): ``sent``, ``delivered``, ``failed``, ``undelivered``, a send-time skip
    (``notification.decided``, ``skip``), and ``mandate.setup_link_sent`` when a mandate-setup
    message is sent."""
    wanted = [a for a in applied if a.status in STATUS_EVENTS]
    if not wanted:
        return
    rows = _load(conn, unique(a.notification_id for a in wanted))
    items: list[OutboxEvent] = []
    for a in wanted:
        row = rows.get(a.notification_id)
        if row is None:
            continue
        type_ = STATUS_EVENTS[a.status]
        data = _notification_data(row, a.status.value, a.occurred_at)
        if type_ is T.NOTIFICATION_SENT:
            data["provider_id"] = a.provider_id or row["provider_id"]
        elif type_ in (T.NOTIFICATION_FAILED, T.NOTIFICATION_UNDELIVERED):
            data |= {"code": a.error_code, "reason": (a.detail or "")[:500] or None}
        elif type_ is T.NOTIFICATION_DECIDED:
            data |= {"decision": "skip", "reason": _skip_reason(a.detail, row["reason"])}
        nid = a.notification_id
        items.append(OutboxEvent(f"{a.status.value}:{nid}", row["org_id"], type_, nid, data))
        if type_ is T.NOTIFICATION_SENT and row["kind"] == Kind.MANDATE_SETUP:
            link = {k: data[k] for k in ("org_id", "customer_id", "invoice_id", "contact_id", "event_id")}
            link |= {"notification_id": nid, "recipient": data["recipient"], "status": "link_sent"}
            link["occurred_at"] = data["occurred_at"]
            items.append(
                OutboxEvent(f"setup_link:{nid}", row["org_id"], T.MANDATE_SETUP_LINK_SENT, nid, link)
            )
    write(conn, items)


def _skip_reason(detail: str | None, routed: str) -> str:
    """A send-time skip's reason code: the detail's first word (``sms_not_connected: …``), else the
    reason routing recorded."""
    head = (detail or "").split(":", 1)[0].strip()
    return head[:40] if head and " " not in head else routed


_c = notifications.c
_LOAD = select(
    _c.id, _c.org_id, _c.invoice_id, _c.customer_id, _c.contact_id, _c.event_id, _c.kind, _c.channel,
    _c.recipient, _c.reason, _c.provider_id,
).where(ids_where(_c.id))  # fmt: skip


def _load(conn: Connection, ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for chunk in in_chunks(list(ids)):
        for r in conn.execute(_LOAD, {IDS: chunk}).mappings():
            found[r["id"]] = dict(r)
    return found


def held(
    conn: Connection, row: Mapping[str, Any], reason: str, until: datetime | None, at: datetime | None = None
) -> None:
    """``notification.held`` for a notification row held back (quiet hours, a limit) until ``until``:
    for the stage that holds it to call in its own transaction."""
    key = f"held:{row['id']}:{_iso(until) if until else ''}"
    data = _notification_data(row, "held", at) | {"reason": reason, "until": _iso(until) if until else None}
    write(conn, [OutboxEvent(key, row["org_id"], T.NOTIFICATION_HELD, row["id"], data)])


def held_many(
    conn: Connection, until: Mapping[str, datetime], reason: str, at: datetime | None = None
) -> None:
    """``notification.held`` for each notification id of ``until`` (held back until its value),
    read in one ``SELECT``: for the stage that holds them to call in its own transaction."""
    rows: list[Any] = []
    for chunk in in_chunks(list(until)):
        rows.extend(
            conn.execute(select(notifications).where(among(notifications.c.id, chunk))).mappings().all()
        )
    order = {nid: i for i, nid in enumerate(until)}
    events = []
    for row in sorted(rows, key=lambda r: order[r["id"]]):
        when = until[row["id"]]
        data = _notification_data(row, "held", at) | {"reason": reason, "until": _iso(when)}
        events.append(
            OutboxEvent(f"held:{row['id']}:{_iso(when)}", row["org_id"], T.NOTIFICATION_HELD, row["id"], data)
        )
    write(conn, events)


# -- payments, mandates, reminders -----------------------------------------------------------------
def payment(conn: Connection, values: Mapping[str, Any], gc_id: str, previous: str | None) -> None:
    """``payment.created`` (no ``previous`` status) or ``payment.status_changed`` for a stored
    payment that is linked to an organisation (an unlinked one has nobody to tell)."""
    org_id = values.get("org_id")
    if not org_id or previous == values["status"]:
        return
    type_ = T.PAYMENT_CREATED if previous is None else T.PAYMENT_STATUS_CHANGED
    data = {
        "org_id": org_id,
        "invoice_id": values.get("invoice_id"),
        "customer_id": values.get("customer_id"),
        "event_id": None,
        "payment_id": gc_id,
        "mandate_id": values.get("gc_mandate_id"),
        "amount_minor": int(values["amount_minor"]),
        "currency": values["currency"],
        "status": values["status"],
        "previous_status": previous,
        "charge_date": values.get("charge_date"),
        "occurred_at": _iso(None),
    }
    key = f"payment:{gc_id}:{previous}>{values['status']}"
    write(conn, [OutboxEvent(key, org_id, type_, gc_id, data)])


def mandate(
    conn: Connection, owner: tuple[str, str] | None, gc_id: str, status: str, previous: str | None
) -> None:
    """``mandate.status_changed`` for a mandate of a linked customer whose status changed (or that
    is new)."""
    if owner is None or previous == status:
        return
    data = {
        "org_id": owner[0],
        "customer_id": owner[1],
        "mandate_id": gc_id,
        "status": status,
        "previous_status": previous,
        "occurred_at": _iso(None),
    }
    key = f"mandate:{gc_id}:{previous}>{status}"
    write(conn, [OutboxEvent(key, owner[0], T.MANDATE_STATUS_CHANGED, gc_id, data)])


def reminder(
    conn: Connection, org_id: str, invoice_id: str, customer_id: str, offset: int, event_id: str
) -> None:
    """``reminder.scheduled``: the scheduler published ``reminder.due`` ``event_id`` for the invoice."""
    data = {
        "org_id": org_id,
        "invoice_id": invoice_id,
        "customer_id": customer_id,
        "event_id": event_id,
        "offset_days": offset,
        "occurred_at": _iso(None),
    }
    key = f"reminder:{org_id}\x1f{event_id}"
    write(conn, [OutboxEvent(key, org_id, T.REMINDER_SCHEDULED, f"{org_id}/{invoice_id}", data)])

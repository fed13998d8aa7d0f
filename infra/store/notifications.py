"""Events and notifications: idempotent records, the send claim, status moves."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Integer, String, and_, bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from infra.errors import MalformedMessage, TransientError
from infra.store import status_outbox
from infra.store.batches import in_chunks, rounds, unique
from infra.store.db import insert_ignore, insert_ignore_for
from infra.store.keys import IDS, ids_where, pair_params, pairs_in, pairs_where
from infra.store.reminders import track_invoices
from infra.store.tables import events, notifications, status_changes
from schemas.events import Event
from schemas.notifications import Status, can_move
from schemas.rows import NotificationRow

_NS = uuid.UUID("5b1f6f0e-4d0c-4d52-9a55-6865726c6421")
#: SHA-1 of the namespace, the part of every id's hash that never changes.
_SEED = hashlib.sha1(_NS.bytes, usedforsecurity=False)


def notification_id(org_id: str, event_id: str, contact_id: str, channel: str, recipient: str) -> str:
    """A stable id: the same (event, contact, channel, address) always gets the same one.

    ``uuid.uuid5(_NS, the key joined by US)``, bit for bit, as ids have always been made (they are
    stored: another id for the same key would notify twice); computed without building a ``UUID``
    and from the namespace's hash kept, at half the cost of one per decision.
    """
    digest = _SEED.copy()
    digest.update("\x1f".join((org_id, event_id, contact_id, channel, recipient)).encode())
    value = int.from_bytes(digest.digest()[:16], "big")
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # the RFC 4122 variant
    value = (value & ~(0xF000 << 64)) | (5 << 76)  # version 5
    return f"ntf_{value:032x}"


def record_event(conn: Connection, event: Event, payload: dict[str, Any], outcome: str) -> bool:
    """Store an event once; False when it was already stored (a redelivery or a re-publish)."""
    return _store_events(conn, [(event, payload, outcome)])[0]


@functools.cache
def _events_returning(dialect: str) -> Any:
    return insert_ignore_for(dialect, events).returning(events.c.org_id, events.c.event_id)


@functools.lru_cache(maxsize=64)
def _pending_of(terms: int) -> Any:
    return (
        select(notifications.c.id, notifications.c.org_id, notifications.c.event_id)
        .where(
            pairs_where(notifications.c.org_id, notifications.c.event_id, terms),
            notifications.c.status == Status.PENDING,
        )
        .order_by(notifications.c.id)
    )


def _store_events(conn: Connection, items: Sequence[tuple[Event, dict[str, Any], str]]) -> list[bool]:
    """``record_event`` for each ``(event, payload, outcome)`` in turn, in one ``INSERT``: whether
    each was new. An event twice in ``items`` is new (at most) the first time."""
    now = datetime.now(UTC)
    keys = [(event.org_id, event.event_id) for event, _, _ in items]
    first: dict[tuple[str, str], int] = {}
    rows: list[dict[str, Any]] = []
    for index, (event, payload, outcome) in enumerate(items):
        if keys[index] in first:
            continue
        first[keys[index]] = index
        rows.append(
            {
                "org_id": event.org_id,
                "event_id": event.event_id,
                "type": event.type,
                "invoice_id": event.invoice_id,
                "customer_id": event.customer_id,
                "occurred_at": event.occurred_at,
                "received_at": now,
                "outcome": outcome,
                "payload": payload,
            }
        )
    new: set[tuple[str, str]] = set()
    for chunk in in_chunks(rows):
        # ON CONFLICT DO NOTHING … RETURNING: the keys of the rows that were inserted, so new.
        inserted = conn.execute(_events_returning(conn.dialect.name), list(chunk))
        new.update((r.org_id, r.event_id) for r in inserted)
    return [key in new and first[key] == index for index, key in enumerate(keys)]


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


def record_notifications(conn: Connection, event: EventKeys, items: Sequence[NewNotification]) -> list[str]:
    """Store the decisions of an event (existing ones are kept as they are).

    Returns the ids of this event's notifications (SMS and email) that are still
    ``pending``, so a redelivered event re-drives exactly the work not yet done.
    """
    return record_notifications_many(conn, [(event, items)])[0]


def record_notifications_many(
    conn: Connection,
    batch: Sequence[tuple[EventKeys, Sequence[NewNotification]]],
    *,
    fresh: Sequence[bool] | None = None,
) -> list[list[str]]:
    """``record_notifications`` for each ``(event, decisions)``: one ``INSERT`` (executemany) for
    every decision, one ``SELECT`` for every event's pending ids (by id). The same event twice
    gets the same ids twice.

    ``fresh[i]`` says event ``i`` was stored by this transaction (``record_events``): none of its
    notifications can have existed before (they hang on their event by a foreign key), so its
    pending ids are those of its decisions that send, as inserted, and it is left out of the
    ``SELECT``.
    """
    now = datetime.now(UTC)
    rows = []
    inserted: list[dict[str, str]] = []  # per event: id → status, as the insert leaves it
    for event, items in batch:
        mine: dict[str, str] = {}
        for i in items:
            nid = notification_id(event.org_id, event.event_id, i.contact_id, i.channel, i.recipient)
            status = Status.PENDING if i.sends else Status.SKIPPED
            mine.setdefault(nid, status)  # the first of two alike is kept, as the insert keeps it
            rows.append(
                {
                    "id": nid,
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
                    "status": status,
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        inserted.append(mine)
    if rows:
        # One executemany: a compiled statement per row costs more than the insert itself.
        conn.execute(insert_ignore(conn, notifications), rows)
        status_outbox.decisions(conn, rows)  # the webhooks' notification.decided, in this transaction
    new = fresh or [False] * len(batch)
    keys = [(event.org_id, event.event_id) for event, _ in batch]
    pending: dict[tuple[str, str], list[str]] = {}
    for terms, params in pair_params(key for key, n in zip(keys, new, strict=True) if not n):
        for r in conn.execute(_pending_of(terms), params):
            pending.setdefault((r.org_id, r.event_id), []).append(r.id)
    for key, n, mine in zip(keys, new, inserted, strict=True):
        if n and key not in pending:
            pending[key] = sorted(nid for nid, status in mine.items() if status == Status.PENDING)
    return [list(pending.get(key, ())) for key in keys]


@dataclass(frozen=True)
class EventRecord:
    """One routed event for ``record_events``: what route hands ``record_event``,
    ``record_notifications`` and ``track_invoice`` for it."""

    event: Event
    payload: dict[str, Any]
    outcome: str
    #: The routing decisions; stored only when the event is new, as route does.
    notifications: Sequence[NewNotification] = field(default_factory=tuple)


@dataclass(frozen=True)
class RecordedEvent:
    """What ``record_events`` made of one event."""

    new: bool  # stored now (False: a redelivery or a re-publish, its decisions not stored again)
    pending: list[str]  # its notifications still ``pending`` (by id), to hand to render


def route_keys(event: EventKeys) -> list[tuple[str, str, str]]:
    """The keys a routed event touches (its own, its invoice's), for ``infra.store.batches.rounds``."""
    return [("event", event.org_id, event.event_id), ("invoice", event.org_id, event.invoice_id)]


def record_events(conn: Connection, records: Sequence[EventRecord]) -> list[RecordedEvent]:
    """Route's writes for many events, in the caller's transaction, with the outcome of each as
    if each had been handled alone, in order: ``record_event``, then (when new) its decisions with
    ``record_notifications``, then ``track_invoice``.

    Idempotent on ``(org_id, event_id)``. Events that share an event id or an invoice are handled
    in successive rounds (``infra.store.batches.rounds``), so a payment and a reminder of one
    invoice in one batch come out as they would one after another; a round takes about six
    statements, whatever its size.
    """
    out: list[RecordedEvent | None] = [None] * len(records)
    for indexes in rounds([route_keys(r.event) for r in records]):
        batch = [records[i] for i in indexes]
        new = _store_events(conn, [(r.event, r.payload, r.outcome) for r in batch])
        pending = record_notifications_many(
            conn,
            [(r.event, r.notifications if n else ()) for r, n in zip(batch, new, strict=True)],
            fresh=new,
        )
        track_invoices(conn, [r.event for r in batch])
        for i, n, p in zip(indexes, new, pending, strict=True):
            out[i] = RecordedEvent(new=n, pending=p)
    return [r for r in out if r is not None]


_ROWS = select(notifications).where(ids_where(notifications.c.id))


def load_notification(conn: Connection, nid: str) -> NotificationRow | None:
    """One notification row, or ``None``."""
    return load_notifications(conn, [nid]).get(nid)


def load_notifications(conn: Connection, ids: Iterable[str]) -> dict[str, NotificationRow]:
    """The rows of these notifications, by id; an unknown id is left out. One ``SELECT`` per 500."""
    found: dict[str, NotificationRow] = {}
    for chunk in in_chunks(unique(ids)):
        for row in conn.execute(_ROWS, {IDS: chunk}).mappings():
            found[row["id"]] = NotificationRow(**row)
    return found


def load_event_payload(conn: Connection, org_id: str, event_id: str) -> dict[str, Any] | None:
    """The stored event JSON."""
    return load_event_payloads(conn, [(org_id, event_id)]).get((org_id, event_id))


def load_event_payloads(
    conn: Connection, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored JSON of these events, by ``(org_id, event_id)``; an unknown one is left out."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in in_chunks(unique(keys)):
        rows = conn.execute(
            select(events.c.org_id, events.c.event_id, events.c.payload).where(
                pairs_in(events.c.org_id, events.c.event_id, chunk)
            )
        )
        found.update(((r.org_id, r.event_id), r.payload) for r in rows)
    return found


#: The first rendering is kept: the SET columns are the parameters' (``body``, ``updated_at``, and
#: ``subject`` and ``html`` for an email).
_STORE_TEXT = update(notifications).where(
    notifications.c.id == bindparam("b_id"), notifications.c.body.is_(None)
)


def store_rendered(conn: Connection, nid: str, body: str) -> None:
    """Keep the rendered message so every retry sends the same text (the sender stays as routed)."""
    store_rendered_many(conn, [(nid, body)])


def store_rendered_many(conn: Connection, items: Sequence[tuple[str, str]]) -> None:
    """``store_rendered`` for each ``(notification id, text)``, in one executemany: a notification
    that has a text keeps it (so does one named twice: the first text is kept)."""
    if not items:
        return
    now = datetime.now(UTC)
    conn.execute(_STORE_TEXT, [{"b_id": nid, "body": body, "updated_at": now} for nid, body in items])


def store_rendered_email(conn: Connection, nid: str, subject: str, text: str, html: str) -> None:
    """Keep the rendered email (``body`` holds the plain-text part) so every retry sends the same."""
    store_rendered_emails_many(conn, [(nid, subject, text, html)])


def store_rendered_emails_many(conn: Connection, items: Sequence[tuple[str, str, str, str]]) -> None:
    """``store_rendered_email`` for each ``(notification id, subject, text, html)``, in one
    executemany; the first rendering of each is kept."""
    if not items:
        return
    now = datetime.now(UTC)
    conn.execute(
        _STORE_TEXT,
        [
            {"b_id": nid, "subject": subject, "body": text, "html": html, "updated_at": now}
            for nid, subject, text, html in items
        ],
    )


#: A notification without a provider's answer yet (its SET columns are the parameters').
_UNANSWERED = update(notifications).where(
    notifications.c.id == bindparam("b_id"), notifications.c.provider_id.is_(None)
)
_STAMP = _UNANSWERED.where(notifications.c.status == Status.SENDING)
_RELEASE = update(notifications).where(
    ids_where(notifications.c.id),
    notifications.c.status == Status.SENDING,
    notifications.c.provider_id.is_(None),
)


def claim_for_sending(conn: Connection, nid: str) -> bool:
    """Record the attempt before calling the provider (``pending → sending``).

    Atomic: of two workers holding the same message, only one wins.
    """
    return nid in claim_for_sending_many(conn, [nid])


def claim_for_sending_many(conn: Connection, ids: Iterable[str]) -> set[str]:
    """``claim_for_sending`` for each of ``ids`` at once (``UPDATE … RETURNING``, one per 500):
    the ids this transaction won. Each row is claimed atomically on its own, so of two workers
    holding the same notification only one wins it, whatever else their batches hold."""
    return _move_pending(conn, ids, Status.SENDING, claim=True)


def stamp_attempts(conn: Connection, items: Sequence[tuple[str, datetime]]) -> None:
    """When each claimed attempt's provider call is due to begin, ``(notification id, when)``, in
    one executemany: a batch claims its notifications before each waits for its rate-limit slot,
    and ``attempted_at`` says when the attempt began (the in-flight window runs from it). Only a
    notification still ``sending`` without an answer is stamped."""
    if not items:
        return
    conn.execute(_STAMP, [{"b_id": nid, "attempted_at": at} for nid, at in items])


def skip_pending(conn: Connection, nid: str) -> bool:
    """``pending → skipped`` at send time (e.g. not enough SMS credit); final at once, so no
    duplicate message can still send it. The decision's reason stays as routing recorded it."""
    return nid in skip_pending_many(conn, [nid])


def skip_pending_many(conn: Connection, ids: Iterable[str]) -> set[str]:
    """``skip_pending`` for each of ``ids`` at once: the ids this transaction moved to skipped."""
    return _move_pending(conn, ids, Status.SKIPPED, claim=False)


_FROM_PENDING = update(notifications).where(
    ids_where(notifications.c.id), notifications.c.status == Status.PENDING
)
_CLAIM = _FROM_PENDING.values(attempts=notifications.c.attempts + 1).returning(notifications.c.id)
_SKIP = _FROM_PENDING.returning(notifications.c.id)


def _move_pending(conn: Connection, ids: Iterable[str], status: Status, *, claim: bool) -> set[str]:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if claim:
        values["attempted_at"] = now
    won: set[str] = set()
    for chunk in in_chunks(unique(ids)):
        moved = conn.execute(_CLAIM if claim else _SKIP, {IDS: chunk, **values})
        won.update(moved.scalars())
    return won


def release_claim(conn: Connection, nid: str) -> None:
    """``sending → pending`` when the provider certainly did not accept the message."""
    release_claims(conn, [nid])


def release_claims(conn: Connection, ids: Iterable[str]) -> None:
    """``release_claim`` for each of ``ids``, in one ``UPDATE`` (per 500)."""
    for chunk in in_chunks(unique(ids)):
        conn.execute(_RELEASE, {IDS: chunk, "status": Status.PENDING, "updated_at": datetime.now(UTC)})


def record_provider_id(conn: Connection, nid: str, provider_id: str) -> None:
    """The provider accepted: from now on a redelivery must not send again."""
    record_provider_ids(conn, [(nid, provider_id)])


def record_provider_ids(conn: Connection, items: Sequence[tuple[str, str]]) -> None:
    """``record_provider_id`` for each ``(notification id, provider id)``, in one executemany; a
    notification that has a provider id keeps it."""
    if not items:
        return
    now = datetime.now(UTC)
    conn.execute(_UNANSWERED, [{"b_id": nid, "provider_id": pid, "updated_at": now} for nid, pid in items])


def record_refusal(conn: Connection, nid: str, error_code: int | None) -> None:
    """The provider refused for good: remember it so a redelivery does not resend."""
    record_refusals(conn, [(nid, error_code)])


def record_refusals(conn: Connection, items: Sequence[tuple[str, int | None]]) -> None:
    """``record_refusal`` for each ``(notification id, error code)``, in one executemany."""
    if not items:
        return
    now = datetime.now(UTC)
    conn.execute(
        _UNANSWERED,
        [
            {"b_id": nid, "error_code": code if code is not None else 0, "updated_at": now}
            for nid, code in items
        ],
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
    moved = apply_statuses(conn, [change])[0]
    if moved is None:
        raise MalformedMessage(f"status report for unknown notification {change.notification_id}")
    return moved


def apply_statuses(conn: Connection, changes: Sequence[StatusChange]) -> list[bool | None]:
    """``apply_status`` for each report, in order, as if one after another: whether each moved
    its notification, or ``None`` for a notification that does not exist (nothing of it is
    recorded; ``apply_status`` raises ``MalformedMessage`` there).

    Set-based: one ``SELECT`` of the current statuses, locking the rows (``FOR UPDATE`` on
    PostgreSQL, in id order so two batches cannot deadlock; SQLite's write transaction holds the
    database), so no other report moves them until this one commits and a ``delivered`` is never
    lost behind a ``sent``; the reports are judged in order from them (two reports of one
    notification in a batch, ``sent`` then ``delivered``, both move it); one ``UPDATE``
    (executemany) moves every notification to where its reports leave it; one ``INSERT``
    (executemany) keeps every report.
    """
    return apply_statuses_with_channels(conn, changes)[0]


def apply_statuses_with_channels(
    conn: Connection, changes: Sequence[StatusChange]
) -> tuple[list[bool | None], dict[str, str]]:
    """``apply_statuses``, and the channel of each notification it found (by id), read with its
    status: what the metrics count each moved one under."""
    now = datetime.now(UTC)
    current = _current_statuses(conn, unique(c.notification_id for c in changes))
    verdicts, moves = _judge(changes, {nid: status for nid, (status, _) in current.items()})
    _move_many(conn, {nid: current[nid][0] for nid in moves}, moves, now)
    # Recorded after the moves, so each row can say whether it applied. The same status again is
    # not "ignored": it is the one applied (a duplicate, which the unique key drops anyway).
    rows: list[dict[str, Any]] = []
    for change, (went, stands) in zip(changes, verdicts, strict=True):
        if went is None or stands is None:
            continue
        detail = change.detail
        if not went and stands != change.status:
            detail = ignored_detail(stands, change.detail)
        rows.append(
            {
                "notification_id": change.notification_id,
                "status": change.status,
                "provider_id": change.provider_id,
                "error_code": change.error_code,
                "detail": (detail or "")[:500] or None,
                "source": change.source,
                "occurred_at": change.occurred_at,
                "recorded_at": now,
            }
        )
    if rows:
        conn.execute(insert_ignore(conn, status_changes), rows)
    status_outbox.statuses(conn, _standing(changes, verdicts))
    return [went for went, _ in verdicts], {nid: channel for nid, (_, channel) in current.items()}


def _standing(
    changes: Sequence[StatusChange], verdicts: Sequence[tuple[bool | None, Status | None]]
) -> list[status_outbox.Applied]:
    """The reports whose status stands after them (moved, or already there): what the status
    outbox tells (each once, by its key)."""
    return [
        status_outbox.Applied(
            c.notification_id, c.status, c.occurred_at, c.provider_id, c.error_code, c.detail
        )
        for c, (_, stands) in zip(changes, verdicts, strict=True)
        if stands is not None and stands == c.status
    ]


_CURRENT = (
    select(notifications.c.id, notifications.c.status, notifications.c.channel)
    .where(ids_where(notifications.c.id))
    .order_by(notifications.c.id)
    .with_for_update()
)


def _current_statuses(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[Status, str]]:
    """The status and channel of each notification found, its row locked until the commit."""
    found: dict[str, tuple[Status, str]] = {}
    for chunk in in_chunks(sorted(ids)):
        rows = conn.execute(_CURRENT, {IDS: chunk})
        found.update((r.id, (Status(r.status), r.channel)) for r in rows)
    return found


def _judge(
    changes: Sequence[StatusChange], current: dict[str, Status]
) -> tuple[list[tuple[bool | None, Status | None]], dict[str, dict[str, Any]]]:
    """Pure: per report, whether it moves its notification and where that stands after it; per
    notification that moves, what its reports write on it (the last one's status, the latest
    provider id and error code given)."""
    at = dict(current)
    verdicts: list[tuple[bool | None, Status | None]] = []
    moves: dict[str, dict[str, Any]] = {}
    for change in changes:
        nid = change.notification_id
        if nid not in at:
            verdicts.append((None, None))
        elif can_move(at[nid], change.status):
            at[nid] = change.status
            move = moves.setdefault(nid, {"b_provider_id": None, "b_error_code": None})
            move["b_status"] = change.status.value
            if change.provider_id:
                move["b_provider_id"] = change.provider_id
            if change.error_code is not None:
                move["b_error_code"] = change.error_code
            verdicts.append((True, change.status))
        else:
            verdicts.append((False, at[nid]))
    return verdicts, moves


#: A move, guarded by the status the notification was read in; a provider id or error code the
#: reports did not give (``NULL``) leaves the stored one. One statement for every batch: an
#: executemany compiles it once, where a ``CASE`` per row would be built and compiled each time.
_MOVE = (
    update(notifications)
    .where(notifications.c.id == bindparam("b_id"), notifications.c.status == bindparam("b_start"))
    .values(
        status=bindparam("b_status"),
        provider_id=func.coalesce(bindparam("b_provider_id", type_=String), notifications.c.provider_id),
        error_code=func.coalesce(bindparam("b_error_code", type_=Integer), notifications.c.error_code),
        updated_at=bindparam("b_now"),
    )
)


def _move_many(
    conn: Connection, start: dict[str, Status], moves: dict[str, dict[str, Any]], now: datetime
) -> None:
    """Write the moves in one executemany, each guarded by its status when read (and locked)."""
    if not moves:
        return
    params = [{**move, "b_id": nid, "b_start": start[nid].value, "b_now": now} for nid, move in moves.items()]
    moved = conn.execute(_MOVE, params).rowcount
    if moved != len(params):  # pragma: no cover - the rows were locked when read
        raise TransientError(f"{len(params) - moved} of {len(params)} notifications moved under a lock")


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

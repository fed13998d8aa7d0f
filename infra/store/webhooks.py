"""Webhook endpoints, their deliveries and attempts (SQLAlchemy Core, in the caller's transaction).

Every operation on an endpoint takes the organisation it must belong to: an id of another
organisation's endpoint is ``NotFound``, exactly like an id that does not exist.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Connection

from infra.errors import NotFound
from infra.store.batches import in_chunks
from infra.store.db import insert_ignore
from infra.store.tables import status_outbox, webhook_attempts, webhook_deliveries, webhook_endpoints
from schemas.status_events import wants

PENDING, DELIVERED, GAVE_UP = "pending", "delivered", "gave_up"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def signing_secrets(row: Any, now: datetime) -> list[str]:
    """The endpoint's secrets that still sign (newest first): the current one and any rotated out
    whose overlap has not ended."""
    out = []
    for s in row["secrets"]:
        expires = _parse(s.get("expires_at"))
        if expires is None or expires > now:
            out.append(str(s["secret"]))
    return out


def add_endpoint(
    conn: Connection, org_id: str, url: str, event_types: list[str] | None, now: datetime
) -> tuple[str, str]:
    """Store a new endpoint (URL and filter already checked); ``(endpoint id, its secret)``. It
    receives the events written from now on (``replay`` sends older ones)."""
    endpoint_id = "whe_" + secrets.token_hex(8)
    secret = new_secret()
    conn.execute(
        webhook_endpoints.insert().values(
            endpoint_id=endpoint_id,
            org_id=org_id,
            url=url,
            event_types=event_types,
            secrets=[{"secret": secret, "expires_at": None}],
            created_at=now,
            consecutive_failures=0,
        )
    )
    return endpoint_id, secret


def _view(row: Any) -> dict[str, Any]:
    return {
        "endpoint_id": row["endpoint_id"],
        "org_id": row["org_id"],
        "url": row["url"],
        "events": row["event_types"],
        "created_at": _aware(row["created_at"]),
        "paused_at": _aware(row["paused_at"]),
        "paused_reason": row["paused_reason"],
        "consecutive_failures": row["consecutive_failures"],
        "secrets": len(row["secrets"]),
    }


def list_endpoints(conn: Connection, org_id: str) -> list[dict[str, Any]]:
    """The organisation's endpoints (never their secrets), oldest first, with pending counts."""
    e = webhook_endpoints.c
    rows = conn.execute(
        select(webhook_endpoints)
        .where(e.org_id == org_id, e.removed_at.is_(None))
        .order_by(e.created_at, e.endpoint_id)
    ).mappings()
    out = [_view(r) for r in rows]
    d = webhook_deliveries.c
    counts: dict[str, int] = dict(
        conn.execute(
            select(d.endpoint_id, func.count())
            .where(d.endpoint_id.in_([v["endpoint_id"] for v in out]), d.status == PENDING)
            .group_by(d.endpoint_id)
        ).all()
    )
    for v in out:
        v["pending"] = int(counts.get(v["endpoint_id"], 0))
    return out


def load_endpoint(conn: Connection, endpoint_id: str, org_id: str) -> Any:
    """The endpoint's row, if it is this organisation's and not removed; else ``NotFound``."""
    e = webhook_endpoints.c
    row = (
        conn.execute(
            select(webhook_endpoints).where(
                e.endpoint_id == endpoint_id, e.org_id == org_id, e.removed_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"endpoint: no webhook endpoint {endpoint_id[:60]!r} in organisation {org_id[:60]!r}")
    return row


def describe_endpoint(conn: Connection, endpoint_id: str, org_id: str) -> dict[str, Any]:
    """One endpoint as ``list_endpoints`` shows it."""
    return _view(load_endpoint(conn, endpoint_id, org_id))


def remove_endpoint(conn: Connection, endpoint_id: str, org_id: str, now: datetime) -> None:
    """Stop sending to the endpoint (its deliveries and attempts stay, for the record)."""
    load_endpoint(conn, endpoint_id, org_id)
    conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.endpoint_id == endpoint_id).values(removed_at=now)
    )


def rotate_secret(
    conn: Connection, endpoint_id: str, org_id: str, overlap: timedelta, now: datetime
) -> tuple[str, datetime]:
    """A new secret signs from now on; the previous ones keep signing until ``now + overlap``
    (each message carries every signature), so the receiver can switch without losing one.
    Returns the new secret and when the old ones stop."""
    row = load_endpoint(conn, endpoint_id, org_id)
    ends = now + overlap
    kept = []
    for s in row["secrets"]:
        expires = _parse(s.get("expires_at"))
        if expires is not None and expires <= now:
            continue  # already out of its overlap: dropped for good
        until = min(expires, ends) if expires is not None else ends
        kept.append({"secret": s["secret"], "expires_at": until.isoformat()})
    secret = new_secret()
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.endpoint_id == endpoint_id)
        .values(secrets=[{"secret": secret, "expires_at": None}, *kept])
    )
    return secret, ends


def resume(conn: Connection, endpoint_id: str, org_id: str, now: datetime) -> int:
    """Unpause the endpoint: everything held while paused is due now, with a fresh retry window.
    Returns how many deliveries are pending."""
    load_endpoint(conn, endpoint_id, org_id)
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.endpoint_id == endpoint_id)
        .values(paused_at=None, paused_reason=None, consecutive_failures=0)
    )
    d = webhook_deliveries.c
    return int(
        conn.execute(
            update(webhook_deliveries)
            .where(d.endpoint_id == endpoint_id, d.status == PENDING)
            .values(next_attempt_at=now, first_attempt_at=None)
        ).rowcount
    )


def replay(conn: Connection, endpoint_id: str, org_id: str, since: datetime, now: datetime) -> int:
    """Send again every event of the organisation written since ``since`` that the endpoint's filter
    takes (the same ``webhook-id`` as before, so a receiver that deduplicates can tell). Returns
    how many deliveries were queued."""
    row = load_endpoint(conn, endpoint_id, org_id)
    o = status_outbox.c
    events = conn.execute(
        select(o.id, o.type, o.subject).where(o.org_id == org_id, o.created_at >= since).order_by(o.id)
    ).all()
    chosen = [r for r in events if wants(row["event_types"], r.type)]
    d = webhook_deliveries.c
    for chunk in in_chunks(chosen):
        ids = [r.id for r in chunk]
        conn.execute(
            update(webhook_deliveries)
            .where(d.endpoint_id == endpoint_id, d.outbox_id.in_(ids))
            .values(status=PENDING, next_attempt_at=now, first_attempt_at=None)
        )
        conn.execute(
            insert_ignore(conn, webhook_deliveries),
            [_delivery(endpoint_id, r.id, r.subject, now) for r in chunk],
        )
    return len(chosen)


def _delivery(endpoint_id: str, outbox_id: int, subject: str, now: datetime) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "outbox_id": outbox_id,
        "subject": subject,
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def fan_out(conn: Connection, now: datetime, limit: int = 500) -> int:
    """Copy the oldest outbox rows not yet fanned out to a delivery for every endpoint of their
    organisation whose filter takes them (paused endpoints too: nothing is dropped while paused);
    returns how many rows were handled. Two processes doing it at once make each delivery once."""
    o = status_outbox.c
    rows = conn.execute(
        select(o.id, o.org_id, o.type, o.subject).where(o.fanned_out_at.is_(None)).order_by(o.id).limit(limit)
    ).all()
    if not rows:
        return 0
    e = webhook_endpoints.c
    endpoints = conn.execute(
        select(e.endpoint_id, e.org_id, e.event_types).where(
            e.org_id.in_({r.org_id for r in rows}), e.removed_at.is_(None)
        )
    ).all()
    by_org: dict[str, list[Any]] = {}
    for ep in endpoints:
        by_org.setdefault(ep.org_id, []).append(ep)
    deliveries = [
        _delivery(ep.endpoint_id, r.id, r.subject, now)
        for r in rows
        for ep in by_org.get(r.org_id, ())
        if wants(ep.event_types, r.type)
    ]
    for chunk in in_chunks(deliveries):
        conn.execute(insert_ignore(conn, webhook_deliveries), list(chunk))
    for chunk in in_chunks([r.id for r in rows]):
        conn.execute(update(status_outbox).where(o.id.in_(chunk)).values(fanned_out_at=now))
    return len(rows)


def lease_endpoints(conn: Connection, owner: str, now: datetime, lease: timedelta) -> list[Any]:
    """Take (or keep) every unpaused endpoint no other live process holds; their rows. One process
    delivers to an endpoint at a time, so its order holds across processes."""
    e = webhook_endpoints.c
    free = and_(
        e.removed_at.is_(None),
        e.paused_at.is_(None),
        or_(e.lease_owner.is_(None), e.lease_owner == owner, e.lease_until < now),
    )
    conn.execute(update(webhook_endpoints).where(free).values(lease_owner=owner, lease_until=now + lease))
    return list(
        conn.execute(
            select(webhook_endpoints).where(
                e.lease_owner == owner, e.removed_at.is_(None), e.paused_at.is_(None)
            )
        ).mappings()
    )


def release_leases(conn: Connection, owner: str) -> None:
    """Give up every endpoint ``owner`` holds (a clean stop)."""
    e = webhook_endpoints.c
    conn.execute(
        update(webhook_endpoints).where(e.lease_owner == owner).values(lease_owner=None, lease_until=None)
    )


@dataclass(frozen=True)
class Due:
    """A delivery that may be attempted now."""

    id: int
    msg_id: str
    type: str
    payload: dict[str, Any]
    attempts: int
    first_attempt_at: datetime | None


def pending_of(conn: Connection, endpoint_id: str, limit: int) -> list[tuple[int, str, datetime]]:
    """The endpoint's oldest pending deliveries in outbox order: ``(id, subject, next attempt)``."""
    d = webhook_deliveries.c
    rows = conn.execute(
        select(d.id, d.subject, d.next_attempt_at)
        .where(d.endpoint_id == endpoint_id, d.status == PENDING)
        .order_by(d.outbox_id)
        .limit(limit)
    ).all()
    return [(r.id, r.subject, _aware(r.next_attempt_at) or datetime.now(UTC)) for r in rows]


def load_due(conn: Connection, ids: Sequence[int]) -> list[Due]:
    """These deliveries with their events, in outbox order."""
    if not ids:
        return []
    d, o = webhook_deliveries.c, status_outbox.c
    rows = conn.execute(
        select(d.id, d.attempts, d.first_attempt_at, o.msg_id, o.type, o.payload)
        .join(status_outbox, o.id == d.outbox_id)
        .where(d.id.in_(list(ids)))
        .order_by(d.outbox_id)
    ).all()
    return [Due(r.id, r.msg_id, r.type, r.payload, r.attempts, _aware(r.first_attempt_at)) for r in rows]


@dataclass(frozen=True)
class Attempt:
    """What one HTTP attempt came to."""

    status_code: int | None
    ok: bool
    error: str | None
    retry_after: float | None
    duration_ms: int


def record_attempt(
    conn: Connection,
    endpoint_id: str,
    due: Due,
    attempt: Attempt,
    status: str,
    next_at: datetime,
    now: datetime,
) -> None:
    """Record an attempt and where it leaves its delivery: ``delivered``, ``pending`` until
    ``next_at``, or ``gave_up`` (the caller decides, by ``workers.rules.webhooks``)."""
    d = webhook_deliveries.c
    conn.execute(
        update(webhook_deliveries)
        .where(d.id == due.id)
        .values(
            status=status,
            attempts=due.attempts + 1,
            first_attempt_at=due.first_attempt_at or now,
            last_attempt_at=now,
            last_status_code=attempt.status_code,
            next_attempt_at=next_at,
        )
    )
    outcome = {DELIVERED: "delivered", GAVE_UP: "gave_up"}.get(status, "retry")
    conn.execute(
        webhook_attempts.insert().values(
            delivery_id=due.id,
            endpoint_id=endpoint_id,
            at=now,
            status_code=attempt.status_code,
            outcome=outcome,
            error=(attempt.error or "")[:500] or None,
            duration_ms=attempt.duration_ms,
        )
    )


def count_failure(conn: Connection, endpoint_id: str, ok: bool) -> int:
    """The endpoint's run of failed attempts after this one (a success ends it: 0)."""
    e = webhook_endpoints.c
    if ok:
        conn.execute(
            update(webhook_endpoints).where(e.endpoint_id == endpoint_id).values(consecutive_failures=0)
        )
        return 0
    return int(
        conn.execute(
            update(webhook_endpoints)
            .where(e.endpoint_id == endpoint_id)
            .values(consecutive_failures=e.consecutive_failures + 1)
            .returning(e.consecutive_failures)
        ).scalar_one()
    )


def pause(conn: Connection, endpoint_id: str, reason: str, now: datetime) -> None:
    """Stop attempting deliveries to the endpoint until an operator resumes it (events keep being
    queued for it meanwhile)."""
    e = webhook_endpoints.c
    conn.execute(
        update(webhook_endpoints)
        .where(e.endpoint_id == endpoint_id, e.paused_at.is_(None))
        .values(paused_at=now, paused_reason=reason[:500], lease_owner=None, lease_until=None)
    )


def attempts_of(conn: Connection, endpoint_id: str, org_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The endpoint's latest attempts, newest first: the event, its type, status, time, response."""
    load_endpoint(conn, endpoint_id, org_id)
    a, d, o = webhook_attempts.c, webhook_deliveries.c, status_outbox.c
    rows = conn.execute(
        select(
            a.at,
            a.status_code,
            a.outcome,
            a.error,
            a.duration_ms,
            d.status,
            d.attempts,
            o.msg_id,
            o.type,
            o.subject,
        )
        .join(webhook_deliveries, d.id == a.delivery_id)
        .join(status_outbox, o.id == d.outbox_id)
        .where(a.endpoint_id == endpoint_id)
        .order_by(a.id.desc())
        .limit(limit)
    ).mappings()
    return [
        {
            "at": _aware(r["at"]),
            "msg_id": r["msg_id"],
            "type": r["type"],
            "subject": r["subject"],
            "response": r["status_code"],
            "outcome": r["outcome"],
            "error": r["error"],
            "duration_ms": r["duration_ms"],
            "delivery_status": r["status"],
        }
        for r in rows
    ]


def prune(conn: Connection, before: datetime, *, published: bool, limit: int = 1000) -> int:
    """Delete up to ``limit`` of the oldest status outbox rows written before ``before`` that are
    done with, with their deliveries and those deliveries' attempts; returns how many rows went.

    Done with: fanned out, confirmed on the status exchange (when ``published``: the exchange is
    on), and no delivery of the row still pending (a paused endpoint's deliveries wait, so their
    rows stay). Each delete asks again, so a row a replay has just reopened keeps what it has."""
    o, d, a = status_outbox.c, webhook_deliveries.c, webhook_attempts.c
    pending = select(d.id).where(d.outbox_id == o.id, d.status == PENDING).exists()
    done = [o.created_at < before, o.fanned_out_at.is_not(None), ~pending]
    if published:
        done.append(o.published_at.is_not(None))
    ids = list(conn.execute(select(o.id).where(*done).order_by(o.id).limit(limit)).scalars())
    pruned = 0
    for chunk in in_chunks(ids):
        closed = select(d.id).where(d.outbox_id.in_(chunk), d.status != PENDING)
        conn.execute(delete(webhook_attempts).where(a.delivery_id.in_(closed)))
        conn.execute(delete(webhook_deliveries).where(d.outbox_id.in_(chunk), d.status != PENDING))
        pruned += conn.execute(delete(status_outbox).where(o.id.in_(chunk), ~pending)).rowcount
    return pruned


def outbox_to_publish(conn: Connection, limit: int) -> Sequence[Any]:
    """The oldest outbox rows not yet confirmed on the status exchange."""
    o = status_outbox.c
    return conn.execute(
        select(o.id, o.msg_id, o.type, o.payload).where(o.published_at.is_(None)).order_by(o.id).limit(limit)
    ).all()


def mark_published(conn: Connection, ids: Sequence[int], now: datetime) -> None:
    """RabbitMQ confirmed these outbox rows on the status exchange."""
    for chunk in in_chunks(list(ids)):
        conn.execute(update(status_outbox).where(status_outbox.c.id.in_(chunk)).values(published_at=now))

"""Reading history: an invoice's timeline (the transaction's history)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, RowMapping

from infra.store.attempts import load_attempts
from infra.store.collection import collection_timeline
from infra.store.consent import cause_of
from infra.store.notifications import IGNORED_PREFIX
from infra.store.reminders import reminder_timeline
from infra.store.tables import events, notifications, org_warnings, status_changes
from schemas.toggles import CONSENT_REASONS, toggles_behind


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _about(n: RowMapping, at: datetime | None, what: str, **details: Any) -> dict[str, Any]:
    """A timeline entry about notification ``n``: when, what, to whom, then ``details``."""
    return {
        "at": _iso(at),
        "what": what,
        "notification_id": n["id"],
        "channel": n["channel"],
        "recipient": n["recipient"],
        **details,
    }


def invoice_history(conn: Connection, invoice_id: str, org_id: str | None = None) -> dict[str, Any]:
    """Everything herald knows about one invoice (the transaction's history), as JSON primitives.

    ``events`` and ``notifications`` are the current records; ``timeline`` is
    every step in time order: event received, each decision, each attempt, each
    delivery status reported and each warning.
    """
    return {"invoice_id": invoice_id, **_history(conn, org_id, invoice_id=invoice_id)}


def contact_history(conn: Connection, contact_id: str, org_id: str | None = None) -> dict[str, Any]:
    """A contact's activity: every notification decided for them, with its events and statuses."""
    return {"contact_id": contact_id, **_history(conn, org_id, contact_id=contact_id)}


def _history(
    conn: Connection, org_id: str | None, *, invoice_id: str | None = None, contact_id: str | None = None
) -> dict[str, Any]:
    nt_query = select(notifications)
    if invoice_id is not None:
        nt_query = nt_query.where(notifications.c.invoice_id == invoice_id)
    if contact_id is not None:
        nt_query = nt_query.where(notifications.c.contact_id == contact_id)
    if org_id is not None:
        nt_query = nt_query.where(notifications.c.org_id == org_id)
    nt_rows = conn.execute(nt_query.order_by(notifications.c.created_at, notifications.c.id)).mappings().all()
    ids = [n["id"] for n in nt_rows]
    if invoice_id is not None:  # an invoice's events count even when they told nobody
        ev_query = select(events).where(events.c.invoice_id == invoice_id)
    else:
        ev_query = select(events).where(events.c.event_id.in_({n["event_id"] for n in nt_rows}))
    if org_id is not None:
        ev_query = ev_query.where(events.c.org_id == org_id)
    ev_rows = conn.execute(ev_query.order_by(events.c.received_at)).mappings().all()
    sc_rows = (
        conn.execute(
            select(status_changes)
            .where(status_changes.c.notification_id.in_(ids))
            .order_by(status_changes.c.occurred_at, status_changes.c.id)
        )
        .mappings()
        .all()
        if ids
        else []
    )

    attempt_rows = load_attempts(conn, ids)
    logged = {a["notification_id"] for a in attempt_rows}

    timeline: list[dict[str, Any]] = []
    for e in ev_rows:
        timeline.append(
            {
                "at": _iso(e["received_at"]),
                "what": "event_received",
                "org_id": e["org_id"],
                "event_id": e["event_id"],
                "type": e["type"],
                "outcome": e["outcome"],
            }
        )
    by_id = {n["id"]: n for n in nt_rows}
    # A skip a toggle caused shows the consent row that switched it off.
    consent = {
        n["id"]: cause_of(
            conn,
            n["org_id"],
            n["contact_id"],
            toggles_behind(n["reason"], n["kind"], n["recipient"], n["customer_id"]),
            n["created_at"],
        )
        for n in nt_rows
        if n["reason"] in CONSENT_REASONS
    }
    for n in nt_rows:
        timeline.append(
            {
                "at": _iso(n["created_at"]),
                "what": "decided",
                "notification_id": n["id"],
                "event_id": n["event_id"],
                "contact_id": n["contact_id"],
                "channel": n["channel"],
                "kind": n["kind"],
                "recipient": n["recipient"],
                "reason": n["reason"],
                **({"consent": consent[n["id"]]} if consent.get(n["id"]) else {}),
            }
        )
        if n["attempted_at"] is not None and n["id"] not in logged:
            # Recorded before the attempt log existed: only the latest claim is known.
            timeline.append(_about(n, n["attempted_at"], "attempt", attempts=n["attempts"]))
    for a in attempt_rows:
        timeline.append(
            _about(
                by_id[a["notification_id"]],
                a["at"],
                "attempt",
                attempts=a["attempt"],
                outcome=a["outcome"],
                http_status=a["http_status"],
                error_code=a["error_code"],
                retry_after=a["retry_after_seconds"],
                detail=a["detail"],
                **({"provider": a["provider"]} if a["provider"] else {}),
            )
        )
    for s in sc_rows:
        timeline.append(
            _about(
                by_id[s["notification_id"]],
                s["occurred_at"],
                s["status"],
                provider_id=s["provider_id"],
                error_code=s["error_code"],
                detail=s["detail"],
                source=s["source"],
                # A report that arrived after a final status changed nothing: say so.
                ignored=(s["detail"] or "").startswith(IGNORED_PREFIX),
            )
        )
    warning_query = select(org_warnings).where(
        org_warnings.c.invoice_id == invoice_id
        if invoice_id is not None
        else org_warnings.c.notification_id.in_(ids)
    )
    if org_id is not None:
        warning_query = warning_query.where(org_warnings.c.org_id == org_id)
    for w in conn.execute(warning_query).mappings():
        timeline.append(
            {
                "at": _iso(w["at"]),
                "what": "warning",
                "kind": w["kind"],
                "detail": w["detail"],
                "notification_id": w["notification_id"],
            }
        )
    if invoice_id is not None:  # Direct Debit: the payment collect created, or the mandate link it sent
        timeline.extend({**c, "at": _iso(c["at"])} for c in collection_timeline(conn, invoice_id, org_id))
    if invoice_id is not None:  # Direct Debit payments of the invoice, as GoCardless moved them
        from infra.store.gocardless import payment_timeline

        for entry in payment_timeline(conn, invoice_id, org_id):
            timeline.append(entry | {"at": _iso(entry["at"])})
        # The reminder schedule's decisions: sent, superseded, moved to a business day, deferred.
        for entry in reminder_timeline(conn, invoice_id, org_id):
            timeline.append(entry | {"at": _iso(entry["at"])})
    timeline.sort(key=lambda entry: entry["at"] or "")
    return {
        "events": [
            {
                "org_id": e["org_id"],
                "event_id": e["event_id"],
                "type": e["type"],
                "outcome": e["outcome"],
                "received_at": _iso(e["received_at"]),
            }
            for e in ev_rows
        ],
        "notifications": [
            {
                "id": n["id"],
                "event_id": n["event_id"],
                "contact_id": n["contact_id"],
                "kind": n["kind"],
                "channel": n["channel"],
                "recipient": n["recipient"],
                "reason": n["reason"],
                "status": n["status"],
                "provider_id": n["provider_id"],
                "error_code": n["error_code"],
                "attempts": n["attempts"],
                **({"consent": consent[n["id"]]} if consent.get(n["id"]) else {}),
            }
            for n in nt_rows
        ],
        "timeline": timeline,
    }

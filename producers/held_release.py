"""The scheduler's release of held notifications (quiet hours): each tick, the holds whose time has
come, in the order they were decided.

A hold whose reason to send disappeared meanwhile (the invoice was paid, the contact opted out)
is settled unsent with that reason (``workers.rules.quiet_hours.settle_reason``). The rest go to
render, and only then are marked released: a scheduler that dies between the two re-releases them
next tick, and render and the senders, idempotent on the notification id, send each once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from infra.bootstrap import Services
from infra.store.held import RELEASED, due_holds, settle_holds
from infra.store.reminders import refresh_paid_many
from schemas.messages import NotificationsDecided
from schemas.notifications import Status
from workers.rules.quiet_hours import settle_reason

log = logging.getLogger("herald.scheduler")


@dataclass
class ReleaseReport:
    """What one release did: the ids handed to render (in order), and the ones settled unsent."""

    released: list[str] = field(default_factory=list)
    settled: dict[str, str] = field(default_factory=dict)  # id → reason


def release_held(services: Services, now: datetime, limit: int = 500) -> ReleaseReport:
    """Release the holds due at ``now`` (at most ``limit``, oldest decision first)."""
    report = ReleaseReport()
    with services.transaction() as conn:
        due = due_holds(conn, now, limit)
        if not due:
            return report
        reminders = [r for r in due if str(r["kind"]).startswith("payment_reminder")]
        paid = refresh_paid_many(conn, [(r["org_id"], r["invoice_id"]) for r in reminders], now)
        paid_ids = {r["notification_id"] for r, p in zip(reminders, paid, strict=True) if p}
        unsent: list[tuple[str, str]] = []
        for row in due:
            nid = row["notification_id"]
            reason = settle_reason(
                kind=row["kind"],
                channel=row["channel"],
                pending=row["status"] == Status.PENDING,
                paid=nid in paid_ids,
                opted_out=bool(row["sms_opted_out"]),
            )
            if reason is None:
                report.released.append(nid)
            else:
                unsent.append((nid, reason))
        for nid in settle_holds(conn, unsent, now):
            report.settled[nid] = dict(unsent)[nid]
    if report.released:
        services.emitter.emit_batches(NotificationsDecided, report.released, services.settings.batch_size)
        with services.transaction() as conn:
            settle_holds(conn, [(nid, RELEASED) for nid in report.released], now)
    log.info(
        "held notifications released",
        extra={"released": len(report.released), "settled": len(report.settled), "now": now.isoformat()},
    )
    return report

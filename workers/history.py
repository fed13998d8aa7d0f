"""Stage ``history``: every delivery status, recorded once, moving only forward.

Reports come in batches (``DeliveryStatusesReported``), applied in one transaction (judged in
order, as if one after another: ``apply_statuses``). A single ``DeliveryStatusReported`` is a
batch of one through the same code.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from infra import log_context, metrics
from infra.bootstrap import Services
from infra.errors import MalformedMessage
from infra.store.notifications import StatusChange, apply_statuses_with_channels
from schemas.messages import DeliveryStatusesReported, DeliveryStatusReported, StatusReport
from workers.decode import decode

logger = logging.getLogger("herald.history")


def record_status(svc: Services, body: Any) -> None:
    """One report: a batch of one (``record_statuses``). A report for an unknown notification
    fails its message, which is dead-lettered at once (a permanent error)."""
    report = decode(DeliveryStatusReported, body)
    if _record(svc, [report]):
        raise MalformedMessage(f"status report for unknown notification {report.notification_id}")


def record_statuses(svc: Services, body: Any) -> None:
    """Decode → apply each forward-only transition and keep each report in the timeline, in one
    transaction → count what moved, once committed.

    A report for a notification that does not exist is logged and skipped; the rest of the batch
    is recorded. Idempotent: a redelivered batch keeps nothing twice and moves nothing again.
    """
    reports = decode(DeliveryStatusesReported, body).reports
    for nid in _record(svc, reports):
        with log_context.bound(notification_id=nid):
            logger.warning("status report for an unknown notification skipped")


def _record(svc: Services, reports: Sequence[StatusReport]) -> list[str]:
    """Apply ``reports`` in one transaction; returns the ids of the unknown notifications."""
    changes = [
        StatusChange(
            notification_id=r.notification_id,
            status=r.status,
            source=r.source,
            occurred_at=r.occurred_at,
            provider_id=r.provider_id,
            error_code=r.error_code,
            detail=r.detail,
        )
        for r in reports
    ]
    with svc.transaction() as conn:
        moved, channels = apply_statuses_with_channels(conn, changes)
    # Counted once committed: a redelivered report does not move it again.
    counts = Counter(
        (channels.get(c.notification_id, "unknown"), c.status.value)
        for c, m in zip(changes, moved, strict=True)
        if m
    )
    for (channel, status), n in counts.items():
        metrics.NOTIFICATIONS.labels(channel=channel, status=status).inc(n)
    unknown = [c.notification_id for c, m in zip(changes, moved, strict=True) if m is None]
    if len(reports) > 1:
        logger.info(
            "statuses recorded",
            extra={"reports": len(reports), "moved": sum(counts.values()), "unknown": len(unknown)},
        )
    return unknown

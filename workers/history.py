"""Stage ``history``: every delivery status, recorded once, moving only forward."""

from __future__ import annotations

from typing import Any

from infra import metrics
from infra.bootstrap import Services
from infra.store.lookups import channel_of
from infra.store.notifications import StatusChange, apply_status
from schemas.messages import DeliveryStatusReported
from workers.decode import decode


def record_status(svc: Services, body: Any) -> None:
    """Decode → apply the forward-only transition → keep the report in the timeline."""
    report = decode(DeliveryStatusReported, body)
    with svc.transaction() as conn:
        moved = apply_status(
            conn,
            StatusChange(
                notification_id=report.notification_id,
                status=report.status,
                source=report.source,
                occurred_at=report.occurred_at,
                provider_id=report.provider_id,
                error_code=report.error_code,
                detail=report.detail,
            ),
        )
        channel = channel_of(conn, report.notification_id) if moved else None
    if moved:  # counted once committed: a redelivered report does not move it again
        metrics.NOTIFICATIONS.labels(channel=channel or "unknown", status=report.status.value).inc()

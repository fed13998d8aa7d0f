"""The status sweep: ask Twilio about SMS still ``sent`` whose status callbacks never arrived.

Twilio does not retry a status callback that found nobody listening (the api down, or unable to
reach RabbitMQ), so such an SMS would stay ``sent`` forever. The sweep looks each one up
(``SmsGateway.fetch_status``) and, once Twilio has moved on (delivered, undelivered, failed),
reports that to ``history`` as a ``DeliveryStatusReported`` with source ``sweep``; history moves
the notification forward as it does for a callback (a report that arrives twice changes nothing).

Which notifications, and how often, is ``workers.rules.sweep``. Each is claimed (``swept_at``)
before it is asked, so several schedulers sweeping at once ask Twilio once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from infra import metrics
from infra.bootstrap import Services
from infra.errors import PermanentProviderError, TransientProviderError
from infra.store.notifications import claim_for_sweep, sweep_candidates
from schemas.messages import DeliveryStatusReported
from workers.rules.sweep import SweepWindow, sweep_verdict

log = logging.getLogger("herald.status_sweep")
SOURCE = "sweep"


def utcnow() -> datetime:
    """The real clock (tests pass their own ``now``)."""
    return datetime.now(UTC)


@dataclass
class SweepReport:
    """What one sweep did: notifications asked about, and what came of it."""

    checked: int = 0
    reported: dict[str, int] = field(default_factory=dict)  # status → notifications
    unchanged: int = 0
    errors: int = 0

    def add(self, other: SweepReport) -> None:
        self.checked += other.checked
        self.unchanged += other.unchanged
        self.errors += other.errors
        for status, n in other.reported.items():
            self.reported[status] = self.reported.get(status, 0) + n

    def summary(self) -> str:
        moved = ", ".join(f"{status} {n}" for status, n in sorted(self.reported.items())) or "none moved"
        return f"checked {self.checked}: {moved}, unchanged {self.unchanged}, errors {self.errors}"


class StatusSweep:
    """``run_batch`` once per scheduler tick; ``run_all`` by hand (``herald status-sweep``)."""

    def __init__(
        self,
        services: Services,
        *,
        after: float | None = None,
        every: float | None = None,
        batch: int | None = None,
        max_age_hours: float | None = None,
        clock: Callable[[], datetime] = utcnow,
        emit: Callable[[DeliveryStatusReported], None] | None = None,
    ) -> None:
        s = services.settings
        self.services = services
        self.after = timedelta(seconds=s.status_sweep_after_seconds if after is None else after)
        self.every = timedelta(seconds=s.status_sweep_every_seconds if every is None else every)
        self.batch = s.status_sweep_batch if batch is None else batch
        self.max_age = timedelta(
            hours=s.status_sweep_max_age_hours if max_age_hours is None else max_age_hours
        )
        self.clock = clock
        # Reports go to history through the services' emitter unless the caller gives its own.
        self.emit = emit if emit is not None else services.emitter.emit

    def window(self, now: datetime) -> SweepWindow:
        return SweepWindow.at(now, after=self.after, every=self.every, max_age=self.max_age)

    def run_batch(self, now: datetime | None = None, limit: int | None = None) -> SweepReport:
        """Ask about up to ``limit`` (default: the batch size) due notifications, oldest first.

        A transient provider error ends the batch (Twilio is having a bad moment: the rest wait
        for the next tick); a permanent one (e.g. an id Twilio does not know) skips that one.
        """
        now = now or self.clock()
        limit = self.batch if limit is None else limit
        report = SweepReport()
        if limit <= 0:
            return report
        window = self.window(now)
        with self.services.reading() as conn:
            rows = sweep_candidates(conn, window, limit)
        for row in rows:
            nid, provider_id = row.id, str(row.provider_id)
            with self.services.transaction() as conn:
                if not claim_for_sweep(conn, nid, window, now):
                    continue  # another sweep asked, or it moved on meanwhile
            report.checked += 1
            # Asked at the provider that took it (failover: not necessarily Twilio).
            gateway = self.services.sms_gateway(row.provider or "twilio")
            if gateway is None:
                report.errors += 1
                metrics.STATUS_SWEEP.labels(outcome="error").inc()
                log.warning("status sweep: provider not configured", extra={"notification_id": nid})
                continue
            try:
                status, code = gateway.fetch_status(provider_id)
            except PermanentProviderError as exc:
                report.errors += 1
                metrics.STATUS_SWEEP.labels(outcome="error").inc()
                log.warning(
                    "status sweep: provider refused the look-up",
                    extra={"notification_id": nid, "code": exc.code},
                )
                continue
            except TransientProviderError as exc:
                report.errors += 1
                metrics.STATUS_SWEEP.labels(outcome="error").inc()
                log.warning(
                    "status sweep: provider unavailable; the rest wait for the next sweep",
                    extra={"notification_id": nid, "error": str(exc)},
                )
                break
            verdict = sweep_verdict(status)
            if verdict is None:
                report.unchanged += 1
                metrics.STATUS_SWEEP.labels(outcome="unchanged").inc()
                continue
            self.emit(
                DeliveryStatusReported(
                    notification_id=nid,
                    status=verdict,
                    source=SOURCE,
                    occurred_at=datetime.now(UTC),
                    provider_id=provider_id,
                    error_code=code,
                    detail=f"twilio reports {status} (status sweep)",
                )
            )
            report.reported[verdict.value] = report.reported.get(verdict.value, 0) + 1
            metrics.STATUS_SWEEP.labels(outcome=verdict.value).inc()
        if report.checked:
            log.info(
                "status sweep",
                extra={
                    "checked": report.checked,
                    "unchanged": report.unchanged,
                    "errors": report.errors,
                    **{f"reported_{k}": v for k, v in report.reported.items()},
                },
            )
        return report

    def run_all(self, now: datetime | None = None) -> SweepReport:
        """Batch after batch until nothing is due at ``now``: each notification is asked once (its
        claim is stamped ``now``, and a notification asked at ``now`` is not due again at ``now``)."""
        now = now or self.clock()
        total = SweepReport()
        size = max(self.batch, 1)
        while True:
            report = self.run_batch(now, limit=size)
            total.add(report)
            if report.checked < size or report.errors:  # nothing more due, or the provider is away
                return total

"""The reminder scheduler: publishes ``reminder.due`` once per (invoice, offset) while unpaid.

Each tick: re-publish claims a dead scheduler left unconfirmed, then, per organisation with
reminder offsets, build its reminder calendar (zone, local hour, business days:
``reminder_calendar``) and plan each open invoice (``workers.rules.scheduling.plan``, pure) and for a reminder
to send: re-check payment, claim the (invoice, offset) row (insert-ignore: of any number of
schedulers one wins), publish with a deterministic event id (confirmed), mark it published.
A crash between claim and confirm leaves a ``claimed`` row that the next tick after
``claim_timeout`` re-publishes with the same event id, which route deduplicates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.engine import Connection

from infra import metrics
from infra.bootstrap import Services
from infra.store.dunning import collections_of
from infra.store.organisations import org_settings, paid_so_far
from infra.store.reminders import (
    claim,
    decided_offsets,
    defer,
    drop_claim,
    load_business_offsets,
    load_invoice,
    load_offsets,
    mark_published,
    open_invoices,
    refresh_paid,
    retake_claim,
    stale_claims,
    supersede,
)
from producers.held_release import ReleaseReport, release_held
from producers.publisher import Publisher
from schemas.rows import InvoiceRow
from workers.rules.business_days import closed_days
from workers.rules.dunning import DEFAULT_GRACE_DAYS, Collection, Deferral, deferral, outstanding
from workers.rules.local_time import UnknownZone, zone
from workers.rules.scheduling import Plan, ReminderCalendar, fire, plan, reminder_event, reminder_event_id

log = logging.getLogger("herald.scheduler")


def reminder_calendar(
    settings: Mapping[str, object],
    *,
    default_zone: str,
    default_hour: int,
    business_offsets: frozenset[int] = frozenset(),
) -> ReminderCalendar:
    """An organisation's reminder calendar from its stored settings (``org_settings``): its zone
    and hour, else the deployment's; its holidays when it counts business days."""
    try:
        tz = zone(str(settings.get("timezone") or default_zone))
    except UnknownZone:  # checked when set; a zone later dropped from the database falls back
        tz = zone(default_zone)
    hour = settings.get("reminder_hour")
    grace = settings.get("collection_grace_days")
    country = settings.get("country")
    subdivision = settings.get("subdivision")
    closed = None
    if settings.get("business_days") and isinstance(country, str):
        closed = closed_days(country, subdivision if isinstance(subdivision, str) else None)
    return ReminderCalendar(
        zone=tz,
        hour=hour if isinstance(hour, int) else default_hour,
        closed=closed,
        business_offsets=business_offsets,
        grace_days=grace if isinstance(grace, int) else DEFAULT_GRACE_DAYS,
    )


def _waits_for_collection(
    conn: Connection, org_id: str, invoice_id: str, now: datetime, calendar: ReminderCalendar
) -> Deferral | None:
    """The GoCardless payment a reminder of the invoice waits for now, if any."""
    payments = collections_of(conn, [(org_id, invoice_id)]).get((org_id, invoice_id), [])
    return deferral(
        [Collection(**p) for p in payments], now.astimezone(calendar.zone).date(), calendar.grace_days
    )


def utcnow() -> datetime:
    """The real clock (tests pass their own ``now``)."""
    return datetime.now(UTC)


@dataclass
class TickReport:
    """What one tick did."""

    published: list[str] = field(default_factory=list)  # event ids
    superseded: int = 0
    republished: list[str] = field(default_factory=list)  # event ids of stale claims
    released: ReleaseReport = field(default_factory=ReleaseReport)  # held notifications (quiet hours)
    #: (invoice, offset, payment id) of reminders deferred while a Direct Debit payment is on its way.
    deferred: list[tuple[str, int, str]] = field(default_factory=list)


class Scheduler:
    """Publishes due reminders; ``tick`` once, or ``run`` until stopped."""

    def __init__(
        self,
        services: Services,
        publisher: Publisher,
        *,
        hour: int | None = None,
        claim_timeout: timedelta = timedelta(minutes=2),
        clock: Callable[[], datetime] = utcnow,
        sweep: Callable[[], object] | None = None,
    ) -> None:
        self.services = services
        self.publisher = publisher
        self.hour = services.settings.reminder_hour if hour is None else hour
        # Longer than a confirmed publish can take: a younger claim may still be in flight.
        self.claim_timeout = claim_timeout
        self.clock = clock
        #: Run after each tick of ``run`` (the status sweep); its failures never stop the reminders.
        self.sweep = sweep

    def tick(self, now: datetime | None = None) -> TickReport:
        """Publish every reminder due at ``now`` (the clock when not given)."""
        now = now or self.clock()
        report = TickReport()
        with self.services.reading() as conn:
            offsets = load_offsets(conn)
            business = load_business_offsets(conn)
            calendars = {
                org_id: self._calendar(org_settings(conn, org_id), business.get(org_id, frozenset()))
                for org_id in offsets
            }
        self._republish_stale(now, offsets, calendars, report)
        for org_id, org_offsets in offsets.items():
            self._tick_org(org_id, org_offsets, calendars[org_id], now, report)
        report.released = release_held(self.services, now)
        if report.published or report.superseded or report.republished:
            log.info(
                "scheduler tick",
                extra={
                    "published": len(report.published),
                    "superseded": report.superseded,
                    "republished": len(report.republished),
                    "now": now.isoformat(),
                },
            )
        return report

    def run(self, interval: float, stop: threading.Event) -> int:
        """Tick every ``interval`` seconds until ``stop`` is set; returns the reminders published.

        A tick that fails (broker or database away) is logged and tried again next time; what it
        claimed but did not confirm is re-published once its claim goes stale.
        """
        published = 0
        log.info("scheduler started", extra={"interval_seconds": interval, "default_local_hour": self.hour})
        while not stop.is_set():
            try:
                published += len(self.tick().published)
            except Exception:
                log.exception("scheduler tick failed; retrying next interval")
            if self.sweep is not None and not stop.is_set():
                try:
                    self.sweep()
                except Exception:
                    log.exception("status sweep failed; retrying next interval")
            stop.wait(interval)
        log.info("scheduler stopped", extra={"published": published})
        return published

    def _calendar(self, settings: Mapping[str, object], business: frozenset[int]) -> ReminderCalendar:
        return reminder_calendar(
            settings,
            default_zone=self.services.settings.default_timezone,
            default_hour=self.hour,
            business_offsets=business,
        )

    def _tick_org(
        self,
        org_id: str,
        offsets: Mapping[int, str | None],
        calendar: ReminderCalendar,
        now: datetime,
        report: TickReport,
    ) -> None:
        # Only invoices whose earliest reminder may have come; the rule decides exactly. The local
        # date may be a day ahead of UTC's, and business days reach further back than calendar days.
        earliest = min(offsets)
        reach = -earliest if earliest not in calendar.business_offsets else -2 * earliest + 14
        due_by = now.date() + timedelta(days=max(reach, -earliest) + 1)
        with self.services.reading() as conn:
            rows = open_invoices(conn, org_id, due_by)
            decided = decided_offsets(conn, org_id, [r.invoice_id for r in rows])
        for row in rows:
            todo = plan(
                row.due_date,
                paid=False,
                offsets=offsets,
                decided=decided[row.invoice_id],
                now=now,
                hour=calendar,
            )
            if todo.publish is not None or todo.supersede:
                self._carry_out(org_id, row, todo, offsets, calendar, now, report)

    def _carry_out(
        self,
        org_id: str,
        row: InvoiceRow,
        todo: Plan,
        offsets: Mapping[int, str | None],
        calendar: ReminderCalendar,
        now: datetime,
        report: TickReport,
    ) -> None:
        invoice_id = row.invoice_id
        when = fire(row.due_date, todo.publish, calendar) if todo.publish is not None else None
        with self.services.transaction() as conn:
            # Events of one invoice are routed concurrently: ask the payments themselves, not only
            # the paid mark route may not have written yet.
            if refresh_paid(conn, org_id, invoice_id, now):
                return
            supersede(conn, org_id, invoice_id, todo.supersede, now)
            report.superseded += len(todo.supersede)
            if todo.publish is not None and when is not None:
                wait = _waits_for_collection(conn, org_id, invoice_id, now, calendar)
                if wait is not None:
                    defer(
                        conn,
                        org_id,
                        invoice_id,
                        todo.publish,
                        now,
                        payment_id=wait.payment_id,
                        reason=f"payment {wait.payment_id} {wait.status}",
                        resume_after=wait.until,
                        fire_at=when.at,
                    )
                    report.deferred.append((invoice_id, todo.publish, wait.payment_id))
                    return
            won = (
                todo.publish is not None
                and when is not None
                and claim(
                    conn,
                    org_id,
                    invoice_id,
                    todo.publish,
                    reminder_event_id(invoice_id, todo.publish),
                    now,
                    fire_at=when.at,
                    moved_from=when.moved_from,
                    moved_reason=when.reason,
                )
            )
        if not won or todo.publish is None:
            return
        event_id = self._publish(row, todo.publish, offsets, calendar, now)
        report.published.append(event_id)
        metrics.REMINDERS.labels(kind="due").inc()

    def _republish_stale(
        self,
        now: datetime,
        offsets: Mapping[str, Mapping[int, str | None]],
        calendars: Mapping[str, ReminderCalendar],
        report: TickReport,
    ) -> None:
        with self.services.reading() as conn:
            stale = stale_claims(conn, now - self.claim_timeout)
        for row in stale:
            org_id, invoice_id, offset = row["org_id"], row["invoice_id"], row["offset_days"]
            with self.services.transaction() as conn:
                invoice = load_invoice(conn, org_id, invoice_id)
                if invoice is None or refresh_paid(conn, org_id, invoice_id, now):
                    drop_claim(conn, org_id, invoice_id, offset, now)
                    continue
                if not retake_claim(conn, row, now):
                    continue  # another scheduler took it over
            calendar = calendars.get(org_id) or ReminderCalendar(
                zone=zone(self.services.settings.default_timezone), hour=self.hour
            )
            event_id = self._publish(invoice, offset, offsets.get(org_id, {}), calendar, now)
            report.republished.append(event_id)
            metrics.REMINDERS.labels(kind="republished").inc()

    def _publish(
        self,
        invoice: InvoiceRow,
        offset: int,
        offsets: Mapping[int, str | None],
        calendar: ReminderCalendar,
        now: datetime,
    ) -> str:
        with self.services.reading() as conn:
            paid = paid_so_far(conn, [(invoice.org_id, invoice.invoice_id)]).get(
                (invoice.org_id, invoice.invoice_id), Decimal(0)
            )
        owed = outstanding(Decimal(invoice.balance), paid)
        event = reminder_event(invoice, offset, hour=calendar, template=offsets.get(offset), outstanding=owed)
        self.publisher.publish(event)  # returns once RabbitMQ confirmed it
        with self.services.transaction() as conn:
            mark_published(conn, invoice.org_id, invoice.invoice_id, offset, now)
        log.info(
            "reminder published",
            extra={
                "org_id": invoice.org_id,
                "invoice_id": invoice.invoice_id,
                "offset_days": offset,
                "event_id": event["event_id"],
            },
        )
        return str(event["event_id"])

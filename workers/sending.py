"""What every sender stage does around a provider call: retries, the attempt log, giving up, and
what a batch comes to.

Channel-agnostic (SMS and email share it). The flow per notification: the provider call is tried
a few times in-call (tenacity, ``call_provider``, in the adapter's ``send_many`` hook); what still
fails transiently is either ambiguous (the provider may have it: keep the claim, reconcile once
the attempt can no longer be in flight), or certainly not sent (release the claim and come back
later with backoff, or give up once the send deadline has passed): ``settle_transients``, the one
place that decides.

A stage handles a batch and collects what it comes to in a ``BatchOutcome``: the status reports
for history, the notifications to come back to (and when), and the ones to hand on alone. Then
``emit_batch`` sends one confirmed ``DeliveryStatusesReported`` and one message per group of
come-backs; ``finish_one`` is the same for a single-item message (one ``DeliveryStatusReported``,
or a ``dramatiq.Retry`` of that message).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import dramatiq
from sqlalchemy.engine import Connection

from infra import log_context, metrics
from infra.bootstrap import Services
from infra.errors import MalformedMessage, TransientProviderError
from infra.retry_policy import in_call_retrying, retry_in_call
from infra.store.attempts import Attempt, Outcome, count_attempts_many, first_attempts_at, log_attempts
from infra.store.notifications import record_refusals, release_claims
from schemas.messages import (
    MAX_BATCH_ITEMS,
    BatchMessage,
    DeliveryStatusesReported,
    DeliveryStatusReported,
    StageMessage,
    StatusReport,
)
from schemas.notifications import Status
from schemas.rows import NotificationRow
from workers.rules.delivery import Step, backoff_seconds, come_back_groups, next_step, retry_plan, wait_out

logger = logging.getLogger("herald.sending")
T = TypeVar("T")

#: The provider behind each sender stage (the ``provider`` label of herald_provider_errors_total).
PROVIDERS = {"sms": "twilio", "email": "smtp"}
#: How long after its claim a notification's provider call may still start, beyond the sender's
#: own waits (its rate-limit slot): a batch's items wait their turn on the adapter's pool, and an
#: item still waiting then is not sent by this batch (``NotStarted``). Part of the in-flight
#: window (``in_flight``), so a live attempt is never taken for one cut short by a crash.
START_WINDOW_SECONDS = 10.0


def in_flight(one_call_seconds: float, extra_wait_seconds: float = 0.0) -> timedelta:
    """How long a claimed attempt may still be alive: it starts within the start window (and
    ``extra_wait_seconds``, the sender's own waits) and then takes at most ``one_call_seconds``
    (every in-call try with its waits), plus a margin for recording the answer. A notification
    claimed longer ago than this and still without an answer was cut short (reconciled)."""
    return timedelta(seconds=START_WINDOW_SECONDS + extra_wait_seconds + one_call_seconds + 5)


class NotStarted(TransientProviderError):
    """A batch item whose provider call never started: its start window passed while it waited
    its turn. Certainly not sent; no provider call, so no attempt is logged."""


def count_provider_error(source: str, exc: BaseException) -> None:
    """Count one error answer of the stage's provider, by its code."""
    metrics.provider_error(PROVIDERS.get(source, source), getattr(exc, "code", None))


@contextmanager
def about(notification_id: str, event_id: str | None = None) -> Iterator[None]:
    """Tag this thread's log lines with one item's ids while it is handled, then put back what
    was bound before (the batch's stage)."""
    saved = log_context.current()
    log_context.bind(notification_id=notification_id, event_id=event_id)
    try:
        yield
    finally:
        log_context.clear()
        log_context.bind(**saved)


@dataclass
class BatchOutcome:
    """What a sender stage's batch came to, collected item by item and sent at the end."""

    source: str
    #: One status report per notification that reached an outcome (or re-reports one).
    reports: list[StatusReport] = field(default_factory=list)
    #: ``(id, seconds, exact)``: to come back to no sooner than that (``exact``: not later either).
    later: list[tuple[str, float, bool]] = field(default_factory=list)
    #: Items that cannot be handled in a batch (an unknown id, a store error of their own): each
    #: is handed on alone as its single-item message, which is retried or dead-lettered with its
    #: reason as before batches; a single-item message raises it instead.
    alone: list[tuple[str, Exception]] = field(default_factory=list)
    #: How many the provider accepted in this batch (not counting re-reports).
    accepted: int = 0

    def report(
        self,
        nid: str,
        status: Status,
        *,
        provider_id: str | None = None,
        code: int | None = None,
        detail: str | None = None,
    ) -> None:
        """Tell history what happened to a notification (sent with the batch's one message)."""
        self.reports.append(
            StatusReport(
                notification_id=nid,
                status=status,
                source=self.source,
                occurred_at=datetime.now(UTC),
                provider_id=provider_id,
                error_code=code,
                detail=detail[:500] if detail else None,
            )
        )

    def again(self, nid: str, seconds: float, *, exact: bool = False) -> None:
        """Come back to this notification alone, no sooner than ``seconds`` from now."""
        self.later.append((nid, seconds, exact))

    def hand_on_alone(self, nid: str, error: Exception) -> None:
        """This notification failed on its own (see ``alone``)."""
        self.alone.append((nid, error))

    def count(self, status: Status) -> int:
        """How many reports say ``status``."""
        return sum(1 for r in self.reports if r.status == status)


def triage(
    ids: Sequence[str],
    rows: dict[str, NotificationRow],
    now: datetime,
    window: timedelta,
    outcome: BatchOutcome,
) -> list[tuple[NotificationRow, Step]]:
    """Each notification's next step (the pure ``next_step``): what needs no provider call is
    settled in ``outcome`` here (unknown ids handed on alone, live attempts waited out, answered
    ones reported again); the rest come back with their step, ``SEND`` or ``RECONCILE``."""
    calls: list[tuple[NotificationRow, Step]] = []
    for nid in ids:
        row = rows.get(nid)
        if row is None:
            outcome.hand_on_alone(nid, MalformedMessage(f"unknown notification {nid}"))
            continue
        step = next_step(row, now, window)
        if step == Step.WAIT:
            # Come back once the attempt can no longer be alive (then it is reconciled); not a
            # failure, so it spends no retry budget: a crash mid-send never dead-letters anything.
            assert row.attempted_at is not None  # WAIT: an attempt is under way
            outcome.again(nid, wait_out(row.attempted_at, now, window) + 0.1)
        elif step == Step.REPORT_SENT:
            outcome.report(nid, Status.SENT, provider_id=row.provider_id)
        elif step == Step.REPORT_FAILED:
            outcome.report(nid, Status.FAILED, code=row.error_code)
        elif step in (Step.SEND, Step.RECONCILE):
            calls.append((row, step))
    return calls


def emit_batch(
    svc: Services,
    outcome: BatchOutcome,
    *,
    again: type[BatchMessage],
    alone: Callable[[str], StageMessage],
) -> None:
    """Hand a batch's outcome on: one confirmed ``DeliveryStatusesReported`` with every report;
    one ``again`` message (the stage's batch type) per group of notifications to come back to,
    delayed (``come_back_groups``); each item that failed on its own as its ``alone`` message."""
    for message in DeliveryStatusesReported.chunked(outcome.reports, MAX_BATCH_ITEMS):
        svc.emitter.emit(message)
    for seconds, ids in come_back_groups(outcome.later):
        delay_ms = max(1, int(seconds * 1000))
        for chunk in again.chunked(ids, svc.settings.batch_size):
            svc.emitter.emit(chunk, delay=delay_ms)
        # Counted as dramatiq counts a deferred message, per notification put back.
        metrics.RETRIES.labels(stage=outcome.source, kind="deferred").inc(len(ids))
    for nid, _ in outcome.alone:
        svc.emitter.emit(alone(nid))


def finish_one(svc: Services, outcome: BatchOutcome) -> None:
    """A single-item message's outcome (a batch of one): its error raised (retried or
    dead-lettered as before batches), its report emitted as one ``DeliveryStatusReported``, or the
    message retried (``dramatiq.Retry``) after its delay."""
    for _, error in outcome.alone:
        raise error
    for report in outcome.reports:
        svc.emitter.emit(DeliveryStatusReported.model_validate(report.model_dump()))
    if outcome.later:
        seconds = max(seconds for _, seconds, _ in outcome.later)
        raise dramatiq.Retry(f"{outcome.source}: come back later", delay=max(1, int(seconds * 1000)))


def report(
    svc: Services,
    nid: str,
    status: Status,
    source: str,
    *,
    provider_id: str | None = None,
    code: int | None = None,
    detail: str | None = None,
) -> None:
    """Tell the history stage what happened to one notification, in a message of its own."""
    svc.emitter.emit(
        DeliveryStatusReported(
            notification_id=nid,
            status=status,
            source=source,
            occurred_at=datetime.now(UTC),
            provider_id=provider_id,
            error_code=code,
            detail=detail[:500] if detail else None,
        )
    )


def call_provider(
    svc: Services, nid: str, call: Callable[[], T], *, source: str = "", provider: str | None = None
) -> tuple[T, datetime]:
    """Call the provider with in-call retries; each retried failure goes to the attempt log.

    Returns the answer and when the try that got it began (the accepted attempt is stamped
    with it, so it sorts before any status the provider reports back). The final outcome
    (accepted, refused, still failing) is logged by the caller, in the same transaction
    that records it on the notification. Runs in the adapter's pool threads (``send_many``'s
    ``attempt`` hook), one item each. ``provider``: the one called (its name in the attempt log).
    """
    began: list[datetime] = []

    def timed() -> T:
        began.append(datetime.now(UTC))
        return call()

    def log_retry(exc: BaseException, sleep: float) -> None:
        count_provider_error(provider or source, exc)
        with svc.transaction() as conn:
            log_attempts(conn, [_attempt(nid, exc, Outcome.RETRY, provider)])
        logger.info("provider call retried", extra={"notification_id": nid, "wait_s": round(sleep, 3)})

    settings = svc.settings
    try:
        # The first try alone: most calls succeed at once, and need none of the retry machinery.
        return timed(), began[-1]
    except Exception as exc:
        if settings.send_call_attempts <= 1 or not retry_in_call(exc, settings.send_call_max_wait_seconds):
            raise
        first: list[BaseException] = [exc]
    retrying = in_call_retrying(settings.send_call_attempts, settings.send_call_max_wait_seconds, log_retry)

    def again() -> T:
        # The loop's first try is the one that just failed (its wait and its log line are the
        # loop's, as for any retried try); the provider is called again only from the second.
        if first:
            raise first.pop()
        return timed()

    answer = retrying(again)
    return answer, began[-1]


def _attempt(nid: str, exc: BaseException, outcome: Outcome, provider: str | None = None) -> Attempt:
    return Attempt(
        nid,
        outcome,
        provider=provider,
        http_status=getattr(exc, "status", None),
        error_code=getattr(exc, "code", None),
        retry_after=getattr(exc, "retry_after", None),
        detail=str(exc),
    )


def settle_transients(
    conn: Connection,
    svc: Services,
    failures: Sequence[tuple[str, TransientProviderError]],
    outcome: BatchOutcome,
    *,
    in_flight: timedelta,
    providers: Mapping[str, str] | None = None,
) -> tuple[list[Attempt], list[tuple[str, TransientProviderError]]]:
    """Decide what each transient failure that outlasted the in-call retries comes to, in the
    caller's transaction (the one that records the batch's answers): the one place for it.

    - ambiguous (the provider may have it): the claim is kept; come back once the attempt can no
      longer be in flight, to reconcile instead of resending;
    - certainly not sent, before the send deadline: the claim is released; come back after the
      backoff (exponential, full jitter, never sooner than ``Retry-After``; the last try at the
      deadline);
    - past the deadline: ``failed`` with ``gave_up``, reported;
    - ``NotStarted`` (never called): released, back soon, nothing logged.

    Writes the claims (released, or the refusal of the given up), adds the reports and the
    come-backs to ``outcome``, and returns the attempts to log (the caller logs them with its
    own, after this read the attempt counts) and the notifications given up (the caller gives
    their credit back and says so). Reads the counts and first tries of the failures in one
    ``SELECT`` each. ``providers``: the provider each notification went to (the attempt log's).
    """
    settings = svc.settings
    at = providers or {}
    attempts: list[Attempt] = []
    released: list[str] = []
    given_up: list[tuple[str, TransientProviderError]] = []
    started = [(nid, exc) for nid, exc in failures if not isinstance(exc, NotStarted)]
    counted = [nid for nid, exc in started if not exc.accepted_unknown]
    tries = count_attempts_many(conn, counted) if counted else {}
    firsts = first_attempts_at(conn, counted) if counted else {}
    now = datetime.now(UTC)
    for nid, exc in failures:
        if isinstance(exc, NotStarted):
            released.append(nid)
            outcome.again(nid, settings.min_backoff_ms / 1000)
            continue
        count_provider_error(at.get(nid, outcome.source), exc)  # the try that outlasted the in-call retries
        if exc.accepted_unknown:
            attempts.append(_attempt(nid, exc, Outcome.AMBIGUOUS, at.get(nid)))
            outcome.again(nid, in_flight.total_seconds() + 1)
            continue
        backoff = backoff_seconds(
            tries[nid], settings.min_backoff_ms / 1000, settings.max_backoff_ms / 1000, random.random()
        )
        wait = retry_plan(
            first_attempt=firsts[nid] or now,
            now=now,
            deadline=timedelta(seconds=settings.send_retry_deadline_seconds),
            backoff=backoff,
            retry_after=exc.retry_after,
        )
        if wait is not None:
            attempts.append(_attempt(nid, exc, Outcome.RETRY, at.get(nid)))
            released.append(nid)
            # Cut to the deadline: the last try, which must not be pushed past it.
            outcome.again(nid, wait, exact=wait < max(backoff, exc.retry_after or 0.0))
        else:
            attempts.append(_attempt(nid, exc, Outcome.GAVE_UP, at.get(nid)))
            given_up.append((nid, exc))
            outcome.report(nid, Status.FAILED, code=exc.code, detail=f"gave_up: {exc}")
    release_claims(conn, released)
    record_refusals(conn, [(nid, exc.code) for nid, exc in given_up])
    return attempts, given_up


def warn_given_up(given_up: Sequence[tuple[str, TransientProviderError]], events: dict[str, str]) -> None:
    """One WARNING line per notification given up, tagged with its ids."""
    for nid, exc in given_up:
        with about(nid, events.get(nid)):
            logger.warning("gave up sending", extra={"notification_id": nid, "code": exc.code})

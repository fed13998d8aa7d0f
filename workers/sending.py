"""What every sender stage does around a provider call: retries, the attempt log, giving up.

Channel-agnostic (SMS and email share it). The flow per message: the provider
call is tried a few times in-call (tenacity); what still fails transiently is
either ambiguous (the provider may have it: leave the claim, reconcile on the
next delivery), or certainly not sent (release the claim and come back later
with backoff, or give up once the send deadline has passed).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import dramatiq
from sqlalchemy.engine import Connection

from infra import metrics
from infra.bootstrap import Services
from infra.errors import TransientProviderError
from infra.retry_policy import in_call_retrying
from infra.store.attempts import Outcome, count_attempts, first_attempt_at, log_attempt
from infra.store.notifications import record_refusal, release_claim
from schemas.messages import DeliveryStatusReported
from schemas.notifications import Status
from workers.rules.delivery import backoff_seconds, retry_plan

logger = logging.getLogger("herald.sending")
T = TypeVar("T")

#: The provider behind each sender stage (the ``provider`` label of herald_provider_errors_total).
PROVIDERS = {"sms": "twilio", "email": "smtp"}


def count_provider_error(source: str, exc: BaseException) -> None:
    """Count one error answer of the stage's provider, by its code."""
    metrics.provider_error(PROVIDERS.get(source, source), getattr(exc, "code", None))


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
    """Tell the history stage what happened to a notification."""
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


def call_provider(svc: Services, nid: str, call: Callable[[], T], *, source: str = "") -> tuple[T, datetime]:
    """Call the provider with in-call retries; each retried failure goes to the attempt log.

    Returns the answer and when the try that got it began (the accepted attempt is stamped
    with it, so it sorts before any status the provider reports back). The final outcome
    (accepted, refused, still failing) is logged by the caller, in the same transaction
    that records it on the notification.
    """
    began: list[datetime] = []

    def timed() -> T:
        began.append(datetime.now(UTC))
        return call()

    def log_retry(exc: BaseException, sleep: float) -> None:
        count_provider_error(source, exc)
        with svc.transaction() as conn:
            _log_transient(conn, nid, exc, Outcome.RETRY)
        logger.info("provider call retried", extra={"notification_id": nid, "wait_s": round(sleep, 3)})

    retrying = in_call_retrying(
        svc.settings.send_call_attempts, svc.settings.send_call_max_wait_seconds, log_retry
    )
    answer = retrying(timed)
    return answer, began[-1]


def _log_transient(conn: Connection, nid: str, exc: BaseException, outcome: Outcome) -> None:
    log_attempt(
        conn,
        nid,
        outcome,
        http_status=getattr(exc, "status", None),
        error_code=getattr(exc, "code", None),
        retry_after=getattr(exc, "retry_after", None),
        detail=str(exc),
    )


def after_transient(
    svc: Services,
    nid: str,
    exc: TransientProviderError,
    *,
    source: str,
    in_flight: timedelta,
    on_give_up: Callable[[Connection], None] | None = None,
) -> None:
    """Decide what a transient failure that outlasted the in-call retries comes to.

    Raises ``dramatiq.Retry`` with the delay to come back after, or records the
    notification ``failed`` (``gave_up``) once the send deadline has passed.
    """
    settings = svc.settings
    count_provider_error(source, exc)  # the try that outlasted the in-call retries
    if exc.accepted_unknown:
        # The provider may have the message: keep the claim, and come back once the attempt is
        # no longer "in flight", so the next delivery reconciles instead of resending.
        with svc.transaction() as conn:
            _log_transient(conn, nid, exc, Outcome.AMBIGUOUS)
        raise dramatiq.Retry(str(exc), delay=int((in_flight.total_seconds() + 1) * 1000))
    now = datetime.now(UTC)
    with svc.transaction() as conn:
        first = first_attempt_at(conn, nid) or now
        retries = count_attempts(conn, nid)
        backoff = backoff_seconds(
            retries,
            settings.min_backoff_ms / 1000,
            settings.max_backoff_ms / 1000,
            random.random(),
        )
        wait = retry_plan(
            first_attempt=first,
            now=now,
            deadline=timedelta(seconds=settings.send_retry_deadline_seconds),
            backoff=backoff,
            retry_after=exc.retry_after,
        )
        if wait is not None:
            _log_transient(conn, nid, exc, Outcome.RETRY)
            release_claim(conn, nid)
        else:
            _log_transient(conn, nid, exc, Outcome.GAVE_UP)
            record_refusal(conn, nid, exc.code)
            if on_give_up is not None:
                on_give_up(conn)
    if wait is None:
        logger.warning("gave up sending", extra={"notification_id": nid, "code": exc.code})
        report(svc, nid, Status.FAILED, source, code=exc.code, detail=f"gave_up: {exc}")
        return
    raise dramatiq.Retry(str(exc), delay=max(1, int(wait * 1000)))

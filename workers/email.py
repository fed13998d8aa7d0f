"""Stage ``email``: send through SMTP, once per notification as far as SMTP allows.

The attempt is recorded (``pending → sending``) before the server is called and
the Message-ID right after its 250, so a redelivered message whose attempt has
a Message-ID only reports it again.

An ambiguous attempt (the worker crashed, or the connection dropped or timed
out after DATA went out) cannot be reconciled the way SMS is: SMTP has no way
to ask a server whether it took a message. Decision: resend it, with the same
Message-ID. The Message-ID is derived from the notification id, so it is the
same on every attempt, and receiving servers and mail clients de-duplicate on
it; the worst case is a second copy in a mailbox that does not, never a
notification silently lost. Each resend is in the attempt log.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq

from infra.adapters.email import OutgoingEmail, UnsendableEmail
from infra.bootstrap import Services
from infra.errors import MalformedMessage, PermanentProviderError, TransientProviderError
from infra.masking import mask_email
from infra.store.attempts import Outcome, log_attempt
from infra.store.notifications import (
    claim_for_sending,
    load_notification,
    record_provider_id,
    record_refusal,
    release_claim,
)
from schemas.messages import EmailRendered
from schemas.notifications import Status
from schemas.rows import NotificationRow
from workers.decode import decode
from workers.rules.delivery import Step, next_step, wait_out
from workers.sending import after_transient, call_provider, count_provider_error, report

logger = logging.getLogger("herald.email")


SOURCE = "email"


def _report(
    svc: Services,
    nid: str,
    status: Status,
    *,
    provider_id: str | None = None,
    code: int | None = None,
    detail: str | None = None,
) -> None:
    report(svc, nid, status, SOURCE, provider_id=provider_id, code=code, detail=detail)


def _in_flight(svc: Services) -> timedelta:
    # Longer than one call with its in-call retries can take (see workers.sms._in_flight).
    s = svc.settings
    calls = s.send_call_attempts * (s.smtp_timeout_seconds * 2 + s.send_call_max_wait_seconds)
    return timedelta(seconds=calls + 5)


def send_email(svc: Services, body: Any) -> None:
    """Decode → decide the step (pure) → claim, call SMTP, record → report to history."""
    nid = decode(EmailRendered, body).notification_id
    in_flight = _in_flight(svc)
    with svc.reading() as conn:
        row = load_notification(conn, nid)
    if row is None:
        raise MalformedMessage(f"unknown notification {nid}")
    step = next_step(row, datetime.now(UTC), in_flight)
    if step == Step.WAIT:
        # Not a failure: wait the live attempt out without spending the retry budget.
        assert row.attempted_at is not None  # WAIT: an attempt is under way
        left = wait_out(row.attempted_at, datetime.now(UTC), in_flight)
        raise dramatiq.Retry(f"{nid}: another attempt is in flight", delay=int(left * 1000) + 100)
    if step == Step.RECONCILE:
        # SMTP cannot be asked; resend with the same Message-ID (see the module docstring).
        with svc.transaction() as conn:
            # The try that was cut short goes in the attempt log: it may have reached the mailbox.
            log_attempt(
                conn,
                nid,
                Outcome.AMBIGUOUS,
                detail="cut short (worker stopped before the server's answer was recorded); "
                "resending with the same Message-ID",
                at=row.attempted_at,
            )
            release_claim(conn, nid)
        logger.warning("email attempt was cut short; resending", extra={"notification_id": nid})
        step = Step.SEND
    if step == Step.NOTHING:
        return
    if step == Step.REPORT_SENT:
        _report(svc, nid, Status.SENT, provider_id=row.provider_id)
        return
    if step == Step.REPORT_FAILED:
        _report(svc, nid, Status.FAILED, code=row.error_code)
        return
    _send(svc, nid, row)


def _send(svc: Services, nid: str, row: NotificationRow) -> None:
    if row.body is None or row.subject is None or row.html is None:
        raise MalformedMessage(f"{nid}: not rendered as an email")
    with svc.transaction() as conn:
        if not claim_for_sending(conn, nid):
            return  # another worker claimed it first; it reports the outcome
    email = OutgoingEmail(
        notification_id=nid, to=row.recipient, subject=row.subject, text=row.body, html=row.html
    )
    log_extra = {"notification_id": nid, "to": mask_email(row.recipient)}
    try:
        sent, started = call_provider(svc, nid, lambda: svc.email.send(email), source=SOURCE)
    except PermanentProviderError as exc:
        # A server's 5xx, or a message that cannot be built at all (a line break in a header):
        # the same on every try, so failed for good with the reason, never retried.
        if not isinstance(exc, UnsendableEmail):
            count_provider_error(SOURCE, exc)
        with svc.transaction() as conn:
            record_refusal(conn, nid, exc.code)
            log_attempt(conn, nid, Outcome.REFUSED, error_code=exc.code, detail=str(exc))
        logger.warning("email refused", extra={**log_extra, "code": exc.code})
        _report(svc, nid, Status.FAILED, code=exc.code, detail=str(exc))
        return
    except TransientProviderError as exc:
        logger.warning("email not sent yet", extra={**log_extra, "code": exc.code})
        after_transient(svc, nid, exc, source=SOURCE, in_flight=_in_flight(svc))
        return
    with svc.transaction() as conn:
        record_provider_id(conn, nid, sent.message_id)
        log_attempt(conn, nid, Outcome.ACCEPTED, at=started)
    logger.info("email accepted", extra={**log_extra, "provider_id": sent.message_id})
    _report(svc, nid, Status.SENT, provider_id=sent.message_id)

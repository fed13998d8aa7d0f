"""Stage ``sms``: send through Twilio, exactly once per notification.

Record the attempt before the call, keep Twilio's id right after it; a
redelivery only re-reports, and an attempt cut short is reconciled against
Twilio before anything is resent. Each sender's segments are paced by the
shared rate limit; transient failures are retried (``workers.sending``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq

from infra import metrics
from infra.adapters.sms import OPTED_OUT
from infra.bootstrap import Services
from infra.errors import MalformedMessage, PermanentProviderError, TransientProviderError
from infra.store.attempts import Outcome, log_attempt
from infra.store.integrations import integration_active
from infra.store.notifications import (
    claim_for_sending,
    load_notification,
    record_provider_id,
    record_refusal,
    release_claim,
    skip_pending,
)
from infra.store.organisations import load_org, mark_opted_out, refund_credit, reserve_credit
from infra.store.rate_limit import take_slot
from schemas.messages import NotificationRendered
from schemas.notifications import Status
from schemas.rows import NotificationRow
from workers.decode import decode
from workers.rules.delivery import Step, next_step, wait_out
from workers.rules.segments import count_segments
from workers.sending import after_transient, call_provider, count_provider_error, report

logger = logging.getLogger("herald.sms")
SOURCE = "sms"


def _callback_url(svc: Services, nid: str) -> str | None:
    base = svc.settings.public_url
    return f"{base}/callbacks/twilio/{nid}" if base else None


def _in_flight(svc: Services) -> timedelta:
    # Longer than one call with its in-call retries can take, so a live attempt is never
    # mistaken for one cut short by a crash.
    s = svc.settings
    calls = s.send_call_attempts * (s.twilio_timeout_seconds + s.send_call_max_wait_seconds)
    return timedelta(seconds=calls + 5)


def send_sms(svc: Services, body: Any) -> None:
    """Decode → decide the step (pure) → claim, call Twilio, record → report to history."""
    nid = decode(NotificationRendered, body).notification_id
    with svc.reading() as conn:
        row = load_notification(conn, nid)
    if row is None:
        raise MalformedMessage(f"unknown notification {nid}")
    step = next_step(row, datetime.now(UTC), _in_flight(svc))
    if step == Step.WAIT:
        # Come back once the attempt can no longer be alive (then it is reconciled); this is not a
        # failure, so it spends no retry budget: a crash mid-send must never dead-letter the message.
        assert row.attempted_at is not None  # WAIT: an attempt is under way
        left = wait_out(row.attempted_at, datetime.now(UTC), _in_flight(svc))
        raise dramatiq.Retry(f"{nid}: another attempt is in flight", delay=int(left * 1000) + 100)
    if step == Step.RECONCILE:
        step, row = _reconcile(svc, nid, row)
    if step == Step.REPORT_SENT:
        report(svc, nid, Status.SENT, SOURCE, provider_id=row.provider_id)
    elif step == Step.REPORT_FAILED:
        report(svc, nid, Status.FAILED, SOURCE, code=row.error_code)
    elif step == Step.SEND:
        _send(svc, nid, row)


def _reconcile(svc: Services, nid: str, row: NotificationRow) -> tuple[Step, NotificationRow]:
    """An attempt was cut short: ask Twilio whether it has the message before resending."""
    assert row.body is not None  # rendered before it was handed to sms
    since = row.attempted_at or datetime.now(UTC) - timedelta(days=1)
    found = svc.sms.find_sent(to=row.recipient, body=row.body, since=since)
    with svc.transaction() as conn:
        if found:
            record_provider_id(conn, nid, found)
            log_attempt(conn, nid, Outcome.RECONCILED, detail=f"found at the provider as {found}")
        else:
            # The cut-short try stays in history as such before the resend.
            log_attempt(
                conn, nid, Outcome.AMBIGUOUS, detail="cut short; twilio has no such message: resending"
            )
            release_claim(conn, nid)
    if found:
        return Step.REPORT_SENT, replace(row, provider_id=found)
    return Step.SEND, row


def _sender_rate(svc: Services, sender: str) -> float:
    return svc.settings.sms_sender_rates.get(sender, svc.settings.sms_segments_per_second)


def _pace(svc: Services, sender: str, parts: int) -> None:
    """Wait for this sender's next slot, shared with every other ``sms`` process."""
    rate = _sender_rate(svc, sender)
    if rate <= 0:
        return
    max_wait = svc.settings.sms_rate_max_wait_seconds
    with svc.transaction() as conn:
        wait = take_slot(conn, sender, parts / rate, time.time(), max_wait)
    if wait > max_wait:
        # Nothing reserved: come back when the sender is free rather than hold a thread.
        raise dramatiq.Retry(f"sender busy for {wait:.1f}s", delay=int(wait * 1000))
    if wait > 0:
        time.sleep(wait)  # the rate limit itself: this message's slot on the sender's timeline


def _send(svc: Services, nid: str, row: NotificationRow) -> None:
    body = row.body
    assert body is not None  # rendered before it was handed to sms
    try:
        parts = count_segments(body).parts
    except ValueError as exc:  # over 1,600 characters: permanent, recorded, never sent
        with svc.transaction() as conn:
            if claim_for_sending(conn, nid):
                record_refusal(conn, nid, None)
        report(svc, nid, Status.FAILED, SOURCE, detail=str(exc))
        return
    with svc.reading() as conn:
        connected = integration_active(conn, "twilio", svc.settings)
    if not connected:
        # The operator disconnected Twilio: stop all SMS activity, and say so in history.
        with svc.transaction() as conn:
            won = skip_pending(conn, nid)
        if won:
            report(
                svc,
                nid,
                Status.SKIPPED,
                SOURCE,
                detail="sms_not_connected: the twilio integration is disconnected",
            )
        return
    sender = str(row.sender or svc.settings.twilio_from)
    _pace(svc, sender, parts)
    with svc.transaction() as conn:
        org = load_org(conn, row.org_id, svc.settings.default_region)
        # Rule 7: reserved atomically, once per notification, before anything is sent.
        short = org.buys_credit and not reserve_credit(conn, nid, row.org_id, parts)
        # Skipped or claimed, of two workers holding the same message only one wins.
        won = skip_pending(conn, nid) if short else claim_for_sending(conn, nid)
    if not won:
        return  # another worker got there first; it reports the outcome
    if org.buys_credit and not short and row.segments is None:
        metrics.SMS_CREDIT.labels(operation="reserved").inc(parts)
    if short:
        detail = f"insufficient_credit: needs {parts}, balance {org.credit_balance}"
        report(svc, nid, Status.SKIPPED, SOURCE, detail=detail)
        return
    try:
        sent, started = call_provider(
            svc,
            nid,
            lambda: svc.sms.send(
                to=row.recipient, sender=sender, body=body, status_callback=_callback_url(svc, nid)
            ),
            source=SOURCE,
        )
    except PermanentProviderError as exc:
        count_provider_error(SOURCE, exc)
        with svc.transaction() as conn:
            record_refusal(conn, nid, exc.code)
            log_attempt(
                conn, nid, Outcome.REFUSED, http_status=exc.status, error_code=exc.code, detail=str(exc)
            )
            refunded = refund_credit(conn, nid, row.org_id)
            if exc.code == OPTED_OUT:
                mark_opted_out(conn, row.org_id, row.contact_id)
        metrics.SMS_CREDIT.labels(operation="refunded").inc(refunded)
        logger.warning("sms refused", extra={"notification_id": nid, "code": exc.code})
        report(svc, nid, Status.FAILED, SOURCE, code=exc.code)
        return
    except TransientProviderError as exc:
        after_transient(
            svc,
            nid,
            exc,
            source=SOURCE,
            in_flight=_in_flight(svc),
            on_give_up=lambda conn: _refund(conn, nid, row.org_id),
        )
        return
    with svc.transaction() as conn:
        record_provider_id(conn, nid, sent.provider_id)
        # Stamped when the call began, so it sorts before any status the provider reports back.
        log_attempt(conn, nid, Outcome.ACCEPTED, detail=sent.provider_id, at=started)
    metrics.SMS_SEGMENTS.inc(parts)
    logger.info("sms accepted", extra={"notification_id": nid, "provider_id": sent.provider_id})
    report(svc, nid, Status.SENT, SOURCE, provider_id=sent.provider_id)


def _refund(conn: Any, nid: str, org_id: str) -> None:
    """Give the credit back (the send gave up) and count it."""
    # Counted before the commit: a rolled-back refund overcounts by one message, which is rare.
    metrics.SMS_CREDIT.labels(operation="refunded").inc(refund_credit(conn, nid, org_id))

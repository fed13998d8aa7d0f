"""Stage ``sms``: send through Twilio, exactly once per notification."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import dramatiq

from infra.adapters.sms import OPTED_OUT
from infra.bootstrap import Services, services
from infra.broker import emit, queue
from infra.errors import MalformedMessage, PermanentProviderError, TransientError, TransientProviderError
from infra.store.notifications import (
    claim_for_sending,
    load_notification,
    record_provider_id,
    record_refusal,
    release_claim,
    skip_pending,
)
from infra.store.organisations import load_org, mark_opted_out, refund_credit, reserve_credit
from schemas.messages import DeliveryStatusReported, NotificationRendered
from schemas.notifications import Status
from workers.decode import decode
from workers.rules.delivery import Step, next_step
from workers.rules.segments import count_segments

logger = logging.getLogger("herald.sms")


def _report(
    nid: str,
    status: Status,
    *,
    provider_id: str | None = None,
    code: int | None = None,
    detail: str | None = None,
) -> None:
    emit(
        DeliveryStatusReported(
            notification_id=nid,
            status=status,
            source="sms",
            occurred_at=datetime.now(UTC),
            provider_id=provider_id,
            error_code=code,
            detail=detail,
        )
    )


def _callback_url(svc: Services, nid: str) -> str | None:
    base = svc.settings.public_url
    return f"{base}/callbacks/twilio/{nid}" if base else None


@dramatiq.actor(queue_name=queue(NotificationRendered.stage), actor_name=NotificationRendered.actor)
def send_sms(body: Any) -> None:
    """Decode → decide the step (pure) → claim, call Twilio, record → report to history."""
    nid = decode(NotificationRendered, body).notification_id
    svc = services()
    in_flight = timedelta(seconds=svc.settings.twilio_timeout_seconds * 2 + 5)
    with svc.transaction() as conn:
        row = load_notification(conn, nid)
    if row is None:
        raise MalformedMessage(f"unknown notification {nid}")
    step = next_step(row, datetime.now(UTC), in_flight)
    if step == Step.WAIT:
        raise TransientError(f"{nid}: another attempt is in flight")
    if step == Step.RECONCILE:
        since = row["attempted_at"] or datetime.now(UTC) - timedelta(days=1)
        found = svc.sms.find_sent(to=row["recipient"], body=row["body"], since=since)
        if found:
            with svc.transaction() as conn:
                record_provider_id(conn, nid, found)
            step = Step.REPORT_SENT
            row["provider_id"] = found
        else:
            with svc.transaction() as conn:
                release_claim(conn, nid)
            step = Step.SEND
    if step == Step.NOTHING:
        return
    if step == Step.REPORT_SENT:
        _report(nid, Status.SENT, provider_id=row["provider_id"])
        return
    if step == Step.REPORT_FAILED:
        _report(nid, Status.FAILED, code=row["error_code"])
        return
    _send(svc, nid, row)


def _send(svc: Services, nid: str, row: dict[str, Any]) -> None:
    try:
        parts = count_segments(row["body"]).parts
    except ValueError as exc:  # over 1,600 characters: permanent, recorded, never sent
        with svc.transaction() as conn:
            if claim_for_sending(conn, nid):
                record_refusal(conn, nid, None)
        _report(nid, Status.FAILED, detail=str(exc))
        return
    with svc.transaction() as conn:
        org = load_org(conn, row["org_id"], svc.settings.default_region)
        # Rule 7: reserved atomically, once per notification, before anything is sent.
        if org.buys_credit and not reserve_credit(conn, nid, row["org_id"], parts):
            reserved = False
            if not skip_pending(conn, nid):
                return  # another worker got there first
        else:
            reserved = True
            if not claim_for_sending(conn, nid):
                return  # another worker claimed it first; it reports the outcome
    if not reserved:
        _report(
            nid, Status.SKIPPED, detail=f"insufficient_credit: needs {parts}, balance {org.credit_balance}"
        )
        return
    sender = row["sender"] or svc.settings.twilio_from
    try:
        sent = svc.sms.send(
            to=row["recipient"], sender=str(sender), body=row["body"], status_callback=_callback_url(svc, nid)
        )
    except PermanentProviderError as exc:
        with svc.transaction() as conn:
            record_refusal(conn, nid, exc.code)
            refund_credit(conn, nid, row["org_id"])
            if exc.code == OPTED_OUT:
                mark_opted_out(conn, row["org_id"], row["contact_id"])
        logger.warning("sms refused", extra={"notification_id": nid, "code": exc.code})
        _report(nid, Status.FAILED, code=exc.code)
        return
    except TransientProviderError as exc:
        if not exc.accepted_unknown:
            with svc.transaction() as conn:
                release_claim(conn, nid)
        raise
    with svc.transaction() as conn:
        record_provider_id(conn, nid, sent.provider_id)
    logger.info("sms accepted", extra={"notification_id": nid, "provider_id": sent.provider_id})
    _report(nid, Status.SENT, provider_id=sent.provider_id)

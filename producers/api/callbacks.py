"""Provider callbacks: Twilio status callbacks, verified, become status reports for ``history``.

What a correctly signed callback may still hold, and the answer (Twilio reads only the status
code, shows a non-2xx as error 11200 in its console, and never retries a callback):

- a notification id we do not have (malformed, or no such row): 204, logged, nothing published.
  It names nothing of ours, and no answer of ours could make Twilio send a better one;
- no ``MessageStatus``, or one that moves nothing (``queued``, ``read``, anything unknown): 204;
- an ``ErrorCode`` or ``MessageSid`` that cannot be used (not digits, too long): the status is
  still reported, without that field, and the report's ``detail`` names what was dropped.

A body that is not a form is a 400, an unsigned one 403, an oversize one 413: the one error shape.

Reports go to history in batches (``delivery.statuses_reported``): the callbacks that arrive
together are handed to RabbitMQ together, in one confirmed message (``producers.coalescing``);
each callback is answered once the message holding its report is confirmed. An idle api hands a
report over at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from dramatiq.errors import BrokerConnectionError
from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from twilio.request_validator import RequestValidator

from infra.bootstrap import Services
from infra.broker import Emitter
from infra.settings import Settings
from infra.store.lookups import channel_of
from producers.api.errors import ApiError
from producers.coalescing import Coalescer
from schemas.messages import DeliveryStatusesReported, DeliveryStatusReported, is_notification_id
from schemas.notifications import Status

logger = logging.getLogger("herald.api.callbacks")

#: Twilio's message statuses that move a notification on (queued/accepted/scheduled change nothing).
TWILIO_STATUS: dict[str, Status] = {
    "sending": Status.SENDING,
    "sent": Status.SENT,
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
}
#: A message SID as ``DeliveryStatusReported.provider_id`` takes it (Twilio's are ``SM`` + 32 hex).
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
#: A Twilio error code (five digits today); ASCII digits only, as ``str.isdigit`` takes ``²``,
#: and at most nine, so it fits the store's integer column.
_ERROR_CODE = re.compile(r"[0-9]{1,9}")


def _shown(value: str, limit: int = 24) -> str:
    """A value from the request, short and escaped, fit for a log line or a detail."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


@dataclass(frozen=True)
class Reading:
    """What one signed callback comes to: a report to publish, or why there is none."""

    report: DeliveryStatusReported | None
    ignored: str | None = None


def read_status_callback(notification_id: str, form: Mapping[str, str], now: datetime) -> Reading:
    """The status report a (verified) Twilio callback makes, or the reason it makes none (pure).

    Fields that cannot be used are left out of the report and named in its ``detail``, so the
    status, which is what matters, is never lost to a malformed extra.
    """
    if not is_notification_id(notification_id):
        return Reading(None, f"unknown notification {_shown(notification_id, 60)}")
    raw_status = form.get("MessageStatus", "")
    status = TWILIO_STATUS.get(raw_status)
    if status is None:
        return Reading(None, f"MessageStatus {_shown(raw_status)} moves nothing")
    dropped: list[str] = []
    sid = form.get("MessageSid") or None
    if sid is not None and not _SID.fullmatch(sid):
        dropped.append(f"MessageSid {_shown(sid)} is not a Twilio SID")
        sid = None
    code = form.get("ErrorCode") or None
    error_code = None
    if code is not None:
        if _ERROR_CODE.fullmatch(code):
            error_code = int(code)
        else:
            dropped.append(f"ErrorCode {_shown(code)} is not a Twilio error code")
    detail = ("dropped: " + "; ".join(dropped)) if dropped else None
    report = DeliveryStatusReported(
        notification_id=notification_id,
        status=status,
        source="twilio_callback",
        occurred_at=now,
        provider_id=sid,
        error_code=error_code,
        detail=detail,
    )
    return Reading(report)


#: How long a status callback keeps trying to hand its report to RabbitMQ (restarting, connection
#: lost) before answering 503. Twilio waits 15 s for the answer and never retries a callback that
#: failed, so the api holds on for less than that instead of failing at once.
PUBLISH_PATIENCE_SECONDS = 10.0
#: Callbacks wait for their report's confirm on these threads (blocking, never on the event loop);
#: the reports themselves go out on the coalescer's one thread and connection. As many callbacks
#: as threads can be waiting at once, so this bounds how many reports one message can carry.
_publishers = ThreadPoolExecutor(max_workers=64, thread_name_prefix="callback-publish")


def publish_patiently(
    emit: Callable[[DeliveryStatusReported], None],
    report: DeliveryStatusReported,
    patience: float = PUBLISH_PATIENCE_SECONDS,
) -> bool:
    """Publish the report with ``emit`` (confirmed), retrying a lost broker for up to ``patience``
    seconds."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            emit(report)
            return True
        except BrokerConnectionError as exc:
            if time.monotonic() + delay > deadline:
                logger.error(
                    "status report not published",
                    extra={"notification_id": report.notification_id, "error": str(exc)},
                )
                return False
        time.sleep(delay)  # RabbitMQ is away: back off, bounded by the deadline above
        delay = min(delay * 2, 1.0)


def twilio_router(
    settings: Settings, services: Callable[[], Services], emitter: Callable[[], Emitter]
) -> APIRouter:
    """``POST /callbacks/twilio/{notification_id}``: 403 unless ``X-Twilio-Signature`` is right.

    ``services`` reads the store; ``emitter`` hands the report to history (without the store)."""
    router = APIRouter()
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    validator = RequestValidator(token)

    def hand_over(reports: list[DeliveryStatusReported]) -> list[BaseException | None]:
        """On the coalescer's thread: every report waiting, in confirmed batches."""
        bodies = [report.body() for report in reports]
        emitter().emit_batches(DeliveryStatusesReported, bodies, settings.batch_size)
        return [None] * len(reports)

    reports: Coalescer[DeliveryStatusReported] = Coalescer(hand_over, "herald-status-reports")
    router.add_event_handler("shutdown", reports.close)

    def known(notification_id: str) -> bool | None:
        """Whether we have the notification; ``None`` when the store cannot say (it is away)."""
        try:
            with services().reading() as conn:
                return channel_of(conn, notification_id) is not None
        except Exception:  # the store away must not cost the report: history records it later
            logger.warning("status callback: notification not looked up", exc_info=True)
            return None

    @router.post("/callbacks/twilio/{notification_id}", status_code=204)
    async def twilio_status(notification_id: str, request: Request) -> Response:
        parsed = await request.form()
        if any(isinstance(v, UploadFile) for v in parsed.values()):
            raise ApiError(400, "bad_request", "a status callback is a form of fields, not of files")
        form = {k: str(v) for k, v in parsed.items()}
        # Twilio signs the URL it was given: our public URL, not whatever host we are reached on.
        base = settings.public_url or str(request.base_url).rstrip("/")
        url = f"{base}{request.url.path}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature or not validator.validate(url, form, signature):
            raise HTTPException(status_code=403, detail="invalid or missing X-Twilio-Signature")
        reading = read_status_callback(notification_id, form, datetime.now(UTC))
        report = reading.report
        if report is None:
            logger.info("status callback ignored: %s", reading.ignored)
            return Response(status_code=204)
        if await run_in_threadpool(known, notification_id) is False:
            logger.warning("status callback ignored: unknown notification %s", _shown(notification_id, 60))
            return Response(status_code=204)
        if report.detail:
            logger.warning(
                "status callback: %s", report.detail, extra={"notification_id": report.notification_id}
            )
        published = await asyncio.get_running_loop().run_in_executor(
            _publishers, publish_patiently, reports.submit, report
        )
        if not published:
            raise HTTPException(
                status_code=503, detail="the status report could not be queued; RabbitMQ is down"
            )
        return Response(status_code=204)

    return router

"""Provider callbacks: Twilio status callbacks, verified, become status reports for ``history``."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from dramatiq.errors import BrokerConnectionError
from fastapi import APIRouter, HTTPException, Request, Response
from twilio.request_validator import RequestValidator

from infra.settings import Settings
from schemas.messages import DeliveryStatusReported
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

#: How long a status callback keeps trying to hand its report to RabbitMQ (restarting, connection
#: lost) before answering 503. Twilio waits 15 s for the answer and never retries a callback that
#: failed, so the api holds on for less than that instead of failing at once.
PUBLISH_PATIENCE_SECONDS = 10.0
#: Reports are published from these threads (blocking, and never on the event loop): each holds
#: one RabbitMQ connection of its own.
_publishers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="callback-publish")


def publish_patiently(report: DeliveryStatusReported, patience: float = PUBLISH_PATIENCE_SECONDS) -> bool:
    """Publish the report (confirmed), retrying a lost broker for up to ``patience`` seconds."""
    from infra.broker import emit  # built on first callback, not at import

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


def twilio_router(settings: Settings) -> APIRouter:
    """``POST /callbacks/twilio/{notification_id}``: 403 unless ``X-Twilio-Signature`` is right."""
    router = APIRouter()
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    validator = RequestValidator(token)

    @router.post("/callbacks/twilio/{notification_id}", status_code=204)
    async def twilio_status(notification_id: str, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        # Twilio signs the URL it was given: our public URL, not whatever host we are reached on.
        base = settings.public_url or str(request.base_url).rstrip("/")
        url = f"{base}{request.url.path}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if not token or not signature or not validator.validate(url, form, signature):
            raise HTTPException(status_code=403, detail="invalid or missing X-Twilio-Signature")
        status = TWILIO_STATUS.get(form.get("MessageStatus", ""))
        if status is None:
            return Response(status_code=204)
        code = form.get("ErrorCode")
        report = DeliveryStatusReported(
            notification_id=notification_id,
            status=status,
            source="twilio_callback",
            occurred_at=datetime.now(UTC),
            provider_id=form.get("MessageSid") or None,
            error_code=int(code) if code and code.isdigit() else None,
        )
        published = await asyncio.get_running_loop().run_in_executor(_publishers, publish_patiently, report)
        if not published:
            raise HTTPException(
                status_code=503, detail="the status report could not be queued; RabbitMQ is down"
            )
        return Response(status_code=204)

    return router

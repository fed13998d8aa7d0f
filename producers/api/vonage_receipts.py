"""Vonage delivery receipts: ``POST /callbacks/vonage``, verified, become status reports for
``history``, as Twilio's status callbacks do (``producers.api.callbacks``).

A receipt comes as JSON (Vonage's OpenAPI format) or as a form; its signature (``sig``, over
every other field and a ``timestamp``) is checked with the SDK's own ``Auth.check_signature``
and ``HERALD_VONAGE_SIGNATURE_SECRET`` / ``_METHOD``. The answers:

- 403: unsigned, badly signed, signed more than ``MAX_RECEIPT_AGE_SECONDS`` ago (a replay), for
  another API key, or no signature secret set (nothing can be checked, so nothing is taken);
- 400: a body that is not a JSON object of plain values nor a form of fields; 415 another type;
- 204 for everything else signed: a receipt whose ``client-ref`` names no notification of ours
  (malformed, unknown, not an SMS, or one Vonage knows by another message id than the one we
  recorded) is logged and dropped, as is a status that moves nothing; unusable extras
  (``err-code``, ``messageId``) are dropped from the report and named in its ``detail``.

Receipts are matched by ``client-ref`` (the notification id every message carries) and the message
id the notification recorded, never by anything else in the receipt.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from vonage_http_client import Auth

import producers.api.callbacks as twilio_callbacks
from infra.adapters.vonage_sms import VONAGE_STATUS_WORDS
from infra.bootstrap import Services
from infra.broker import Emitter
from infra.settings import Settings
from infra.store.tables import notifications
from producers.api.callbacks import TWILIO_STATUS, Reading, _shown
from producers.api.errors import ApiError
from producers.coalescing import Coalescer
from schemas.bounded_json import loads_bounded
from schemas.messages import DeliveryStatusesReported, DeliveryStatusReported, is_notification_id

logger = logging.getLogger("herald.api.vonage")

#: A signed receipt older than this (by its ``timestamp``) is refused: a replay, or a clock off.
MAX_RECEIPT_AGE_SECONDS = 300
#: A Vonage message id as a report's ``provider_id`` takes it (a UUID today; letters, digits, ``-``).
_MESSAGE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
#: An ``err-code`` (``0`` is none): ASCII digits only, at most nine (the store's integer column).
_ERROR_CODE = re.compile(r"[0-9]{1,9}")
#: A signature: hex, as every method the SDK signs with writes it.
_SIGNATURE = re.compile(r"[0-9A-Fa-f]{32,128}")
_FORM = "application/x-www-form-urlencoded"


def read_receipt(fields: Mapping[str, str], now: datetime) -> Reading:
    """The status report a (verified) Vonage receipt makes, or the reason it makes none (pure)."""
    nid = fields.get("client-ref", "")
    if not is_notification_id(nid):
        return Reading(None, f"client-ref {_shown(nid, 60)} names no notification")
    raw = fields.get("status", "")
    word = VONAGE_STATUS_WORDS.get(raw.lower())
    status = TWILIO_STATUS.get(word) if word else None
    if status is None:
        return Reading(None, f"status {_shown(raw)} moves nothing")
    dropped: list[str] = []
    message_id = fields.get("messageId") or None
    if message_id is not None and not _MESSAGE_ID.fullmatch(message_id):
        dropped.append(f"messageId {_shown(message_id)} is not a Vonage message id")
        message_id = None
    code = fields.get("err-code") or None
    error_code = None
    if code is not None:
        if _ERROR_CODE.fullmatch(code):
            error_code = int(code) or None
        else:
            dropped.append(f"err-code {_shown(code)} is not a Vonage error code")
    detail = ("dropped: " + "; ".join(dropped)) if dropped else None
    report = DeliveryStatusReported(
        notification_id=nid,
        status=status,
        source="vonage_receipt",
        occurred_at=now,
        provider_id=message_id,
        error_code=error_code,
        detail=detail,
    )
    return Reading(report)


def signed_fields(body: Mapping[str, object]) -> dict[str, str]:
    """The receipt's fields as text (what Vonage signs); ``ApiError`` 400 naming a field whose
    value is not a plain value (an object, a list)."""
    fields: dict[str, str] = {}
    for key, value in body.items():
        if isinstance(value, dict | list):
            raise ApiError(400, "bad_request", f"receipt field {_shown(key)} is not a plain value")
        fields[key] = "" if value is None else str(value)
    return fields


def vonage_router(
    settings: Settings, services: Callable[[], Services], emitter: Callable[[], Emitter]
) -> APIRouter:
    """``POST /callbacks/vonage``: 403 unless the receipt's ``sig`` is right (see the module)."""
    router = APIRouter()
    secret = settings.vonage_signature_secret.get_secret_value() if settings.vonage_signature_secret else ""
    key = settings.vonage_api_key or ""
    checker = (
        Auth(api_key=key, signature_secret=secret, signature_method=settings.vonage_signature_method)
        if secret and key
        else None
    )

    def hand_over(reports: list[DeliveryStatusReported]) -> list[BaseException | None]:
        """On the coalescer's thread: every report waiting, in confirmed batches."""
        bodies = [report.body() for report in reports]
        emitter().emit_batches(DeliveryStatusesReported, bodies, settings.batch_size)
        return [None] * len(reports)

    reports: Coalescer[DeliveryStatusReported] = Coalescer(hand_over, "herald-vonage-reports")
    router.add_event_handler("shutdown", reports.close)

    def ours(nid: str, message_id: str | None) -> bool | None:
        """Whether the notification is one of our SMS and, when it recorded a message id, this
        message's; ``None`` when the store cannot say (it is away)."""
        try:
            with services().reading() as conn:
                row = conn.execute(
                    select(notifications.c.channel, notifications.c.provider_id).where(
                        notifications.c.id == nid
                    )
                ).first()
        except Exception:  # the store away must not cost the report: history records it later
            logger.warning("vonage receipt: notification not looked up", exc_info=True)
            return None
        if row is None or row.channel != "sms":
            return False
        return row.provider_id is None or message_id is None or row.provider_id == message_id

    def verify(fields: dict[str, str]) -> None:
        """403 unless signed by our secret, for our key, recently."""
        signature = fields.get("sig", "")
        if checker is None:
            raise HTTPException(status_code=403, detail="receipts are refused: no signature secret is set")
        if not _SIGNATURE.fullmatch(signature):
            raise HTTPException(status_code=403, detail="invalid or missing receipt signature (sig)")
        if fields.get("api-key", key) != key:
            raise HTTPException(status_code=403, detail="the receipt is for another API key")
        stamp = fields.get("timestamp", "")
        if (
            not (stamp.isascii() and stamp.isdigit())
            or abs(time.time() - int(stamp)) > MAX_RECEIPT_AGE_SECONDS
        ):
            raise HTTPException(status_code=403, detail="the receipt's timestamp is missing or stale")
        if not checker.check_signature(dict(fields)):
            raise HTTPException(status_code=403, detail="invalid or missing receipt signature (sig)")

    async def read_body(request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                # Bounded: a receipt is flat, and a hostile nesting must not recurse out.
                loaded = loads_bounded((await request.body()).decode("utf-8"), settings.max_json_depth)
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, "bad_request", "the receipt is not JSON") from None
            if not isinstance(loaded, dict):
                raise ApiError(400, "bad_request", "the receipt is not a JSON object")
            return signed_fields(loaded)
        if kind in (_FORM, "multipart/form-data"):
            parsed = await request.form()
            if any(isinstance(v, UploadFile) for v in parsed.values()):
                raise ApiError(400, "bad_request", "a receipt is a form of fields, not of files")
            return {k: str(v) for k, v in parsed.items()}
        raise ApiError(415, "unsupported_media_type", "a receipt is JSON or a form")

    @router.post("/callbacks/vonage", status_code=204)
    async def vonage_receipt(request: Request) -> Response:
        fields = await read_body(request)
        verify(fields)
        reading = read_receipt(fields, datetime.now(UTC))
        report = reading.report
        if report is None:
            logger.info("vonage receipt ignored: %s", reading.ignored)
            return Response(status_code=204)
        if await run_in_threadpool(ours, report.notification_id, report.provider_id) is False:
            logger.warning(
                "vonage receipt ignored: no SMS %s sent as that message",
                _shown(report.notification_id, 60),
            )
            return Response(status_code=204)
        if report.detail:
            logger.warning(
                "vonage receipt: %s", report.detail, extra={"notification_id": report.notification_id}
            )
        published = await asyncio.get_running_loop().run_in_executor(
            twilio_callbacks._publishers, twilio_callbacks.publish_patiently, reports.submit, report
        )
        if not published:
            raise HTTPException(
                status_code=503, detail="the status report could not be queued; RabbitMQ is down"
            )
        return Response(status_code=204)

    return router

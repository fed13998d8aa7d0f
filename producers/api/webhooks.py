"""``POST /webhooks/gocardless``: signed GoCardless webhooks into the store (and thank-yous)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from infra.adapters.gocardless_account import GoCardlessUnavailable
from infra.settings import Settings
from infra.store.integrations import integration_active
from producers.gocardless.webhooks import handle_events, signature_ok
from producers.gocardless.wiring import GoCardlessWiring, LazyPublisher

logger = logging.getLogger("herald.api.webhooks")

#: GoCardless's documented answer for a webhook whose signature does not match.
INVALID_SIGNATURE = 498


def gocardless_router(settings: Settings, wiring: GoCardlessWiring) -> APIRouter:
    """The webhook receiver: 498 unless ``Webhook-Signature`` is right; 204 once handled; 503 when
    GoCardless could not be read (it resends, and events handled already are skipped)."""
    router = APIRouter()
    secret = (
        settings.gocardless_webhook_secret.get_secret_value() if settings.gocardless_webhook_secret else None
    )

    @router.post("/webhooks/gocardless")
    async def gocardless_webhook(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers them exactly
        if not signature_ok(body, secret, request.headers.get("Webhook-Signature")):
            return JSONResponse(
                {"error": {"code": "invalid_signature", "message": "invalid or missing Webhook-Signature"}},
                status_code=INVALID_SIGNATURE,
            )
        try:
            events = json.loads(body)["events"]
            assert isinstance(events, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            return JSONResponse({"error": {"code": "bad_request", "message": "no events"}}, status_code=400)
        # The handlers block on the database and GoCardless: off the event loop.
        return await run_in_threadpool(_handle, events)

    def _handle(events: list[dict[str, Any]]) -> Response:
        services = wiring.services
        with services.reading() as conn:
            active = integration_active(conn, "gocardless", settings)
        if not active:  # disconnected: herald does nothing for GoCardless, and says it got it
            logger.info("webhook ignored: the GoCardless integration is disconnected")
            return Response(status_code=204)
        publish = LazyPublisher(settings)
        try:
            result = handle_events(services, wiring.reader, events, publish)
        except GoCardlessUnavailable as exc:
            logger.warning("webhook not handled, GoCardless will resend: %s", exc)
            error = {"error": {"code": "provider_unavailable", "message": str(exc)}}
            return JSONResponse(error, status_code=503)
        finally:
            publish.close()
        logger.info(
            "webhook handled=%d duplicates=%d published=%d",
            result.handled,
            result.duplicates,
            len(result.published),
        )
        return Response(status_code=204)

    return router

"""``POST /webhooks/gocardless``: signed GoCardless webhooks into the store (and thank-yous)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from infra.adapters.gocardless_account import GoCardlessUnavailable
from infra.errors import WebhookRejected
from infra.settings import Settings
from infra.store.integrations import integration_active
from producers.api.errors import error_response
from producers.gocardless.webhooks import handle_events, read_events, signature_ok
from producers.gocardless.wiring import GoCardlessWiring, LazyPublisher

logger = logging.getLogger("herald.api.webhooks")

#: GoCardless's documented answer for a webhook whose signature does not match.
INVALID_SIGNATURE = 498


def gocardless_router(settings: Settings, wiring: GoCardlessWiring) -> APIRouter:
    """The webhook receiver: 498 unless ``Webhook-Signature`` is right; 204 once handled; 400 for a
    body with no list of events; 422 naming each malformed event (the others are handled, and
    GoCardless's resend of the batch changes nothing more); 503 when GoCardless could not be
    read (it resends, and events handled already are skipped)."""
    router = APIRouter()
    secret = (
        settings.gocardless_webhook_secret.get_secret_value() if settings.gocardless_webhook_secret else None
    )

    @router.post("/webhooks/gocardless")
    async def gocardless_webhook(request: Request) -> Response:
        body = await request.body()  # the raw bytes: the signature covers them exactly
        if not signature_ok(body, secret, request.headers.get("Webhook-Signature")):
            return error_response(
                INVALID_SIGNATURE, "invalid_signature", "invalid or missing Webhook-Signature"
            )
        try:
            events = read_events(body, settings.max_json_depth)
        except WebhookRejected as rejected:
            logger.warning("webhook refused: %s", rejected.message)
            raise  # answered 400 by the edge's table
        # The handlers block on the database and GoCardless: off the event loop.
        return await run_in_threadpool(_handle, events)

    def _handle(events: list[Any]) -> Response:
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
            raise  # answered 503 by the edge's table
        finally:
            publish.close()
        logger.info(
            "webhook handled=%d duplicates=%d rejected=%d published=%d",
            result.handled,
            result.duplicates,
            len(result.rejected),
            len(result.published),
        )
        if result.rejected:
            said = "; ".join(f"{d['field']}: {d['message']}" for d in result.rejected[:5])
            more = f" (and {len(result.rejected) - 5} more)" if len(result.rejected) > 5 else ""
            message = f"{len(result.rejected)} of {len(events)} events not handled: {said}{more}"
            return error_response(422, "invalid_events", message, result.rejected)
        return Response(status_code=204)

    return router

"""``POST /payments/{id}/cancel``: cancel a GoCardless payment while it is ``pending_submission``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from infra.errors import ConfigurationError
from producers.api.errors import error_response
from producers.gocardless.cancel import CancelRefused, cancel_payment
from producers.gocardless.wiring import GoCardlessWiring


def payments_router(wiring: GoCardlessWiring) -> APIRouter:
    """200 with the payment once cancelled; otherwise ``{"error": {"code", "message", "details"}}`` with 409
    (not cancellable, integration disconnected), 404 (unknown), 422, or 503 (GoCardless down)."""
    router = APIRouter()

    @router.post("/payments/{payment_id}/cancel")
    def cancel(payment_id: str) -> JSONResponse:
        try:
            payment = cancel_payment(wiring.services, wiring.reader, payment_id)
        except CancelRefused as refused:
            return JSONResponse(refused.as_json(), status_code=refused.http_status)
        except ConfigurationError as exc:
            return error_response(503, "not_configured", str(exc))
        return JSONResponse({"payment": {"id": payment["id"], "status": payment["status"]}})

    return router

"""``POST /payments/{id}/cancel``: cancel a GoCardless payment while it is ``pending_submission``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from producers.gocardless.cancel import cancel_payment
from producers.gocardless.wiring import GoCardlessWiring


def payments_router(wiring: GoCardlessWiring) -> APIRouter:
    """200 with the payment once cancelled; otherwise ``{"error": {"code", "message", "details"}}`` with 409
    (not cancellable, integration disconnected), 404 (unknown), 422, or 503 (GoCardless down, or
    not configured): the refusals are answered by ``producers.api.errors.ANSWERS``."""
    router = APIRouter()

    @router.post("/payments/{payment_id}/cancel")
    def cancel(payment_id: str) -> JSONResponse:
        payment = cancel_payment(wiring.services, wiring.reader, payment_id)
        return JSONResponse({"payment": {"id": payment["id"], "status": payment["status"]}})

    return router

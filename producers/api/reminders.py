"""An invoice's reminder schedule over HTTP, as ``herald reminders show``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs
from producers.api.errors import ApiError
from producers.operations.reminder_schedule import reminder_schedule
from schemas.access import Capability

router = APIRouter(tags=["history"])


@router.get("/invoices/{invoice_id}/reminders")
def get_reminders(
    invoice_id: str, key: ApiKey = needs(Capability.VIEW), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Every reminder of the invoice: offset, state (planned, sent, sending, superseded, held,
    deferred_collection_pending), local and UTC time, reason; 404 when the key's organisation has
    no such invoice."""
    lines = reminder_schedule(ctx.services, key.org_id, invoice_id)
    if lines is None:
        raise ApiError(404, "not_found", f"no invoice {invoice_id}")
    return {"invoice_id": invoice_id, "reminders": lines}

"""History: an invoice's timeline and a contact's activity, as ``herald history --json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from infra.store.api_keys import ApiKey
from infra.store.history import contact_history, invoice_history
from infra.store.toggles import load_toggles
from producers.api.auth import ApiContext, context, needs, revealed
from producers.api.errors import ApiError
from producers.operations.views import mask_history
from schemas.access import Capability

router = APIRouter(tags=["history"])
_REVEAL = Query(False, description="Full numbers and addresses (admin keys only).")


@router.get("/invoices/{invoice_id}/history")
def get_invoice_history(
    invoice_id: str,
    reveal: bool = _REVEAL,
    key: ApiKey = needs(Capability.VIEW),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Every event, decision, attempt, status and warning of the invoice, in time order; 404
    when nothing is known of it in the key's organisation."""
    show = revealed(key, reveal)
    with ctx.services.reading() as conn:
        data = invoice_history(conn, invoice_id, key.org_id)
    if not data["events"]:
        raise ApiError(404, "not_found", f"no invoice {invoice_id}")
    return data if show else mask_history(data)


@router.get("/contacts/{contact_id}/activity")
def get_contact_activity(
    contact_id: str,
    reveal: bool = _REVEAL,
    key: ApiKey = needs(Capability.VIEW),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Every notification decided for the contact, with its events and statuses; 404 when the
    key's organisation has no such contact."""
    show = revealed(key, reveal)
    with ctx.services.reading() as conn:
        if load_toggles(conn, key.org_id, contact_id) is None:
            raise ApiError(404, "not_found", f"no contact {contact_id}")
        data = contact_history(conn, contact_id, key.org_id)
    return data if show else mask_history(data)

"""The consent trail and email suppressions over HTTP (``herald contacts consent`` and
``herald contacts suppressions``), scoped to the key's organisation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from infra.store.api_keys import ApiKey
from infra.store.consent import consent_trail
from infra.store.suppression import lift_suppression, list_suppressions
from infra.store.toggles import load_toggles
from producers.api.auth import ApiContext, context, needs, revealed
from producers.api.errors import ApiError
from producers.operations.views import mask_consent
from schemas.access import Capability

router = APIRouter(tags=["contacts"])


@router.get("/contacts/{contact_id}/consent")
def get_consent(
    contact_id: str,
    reveal: bool = Query(False, description="Full addresses (admin keys only)."),
    key: ApiKey = needs(Capability.VIEW),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """Every change of the contact's toggles, oldest first: time, toggle, old and new value,
    source and who (masked unless revealed)."""
    with ctx.services.reading() as conn:
        if load_toggles(conn, key.org_id, contact_id) is None:
            raise ApiError(404, "not_found", f"no contact {contact_id}")
        rows = consent_trail(conn, key.org_id, contact_id)
    return {"contact_id": contact_id, "consent": rows if revealed(key, reveal) else mask_consent(rows)}


@router.get("/suppressions")
def get_suppressions(
    key: ApiKey = needs(Capability.VIEW), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """The organisation's addresses suppressed after a hard bounce, with the reason."""
    with ctx.services.reading() as conn:
        return {"suppressions": list_suppressions(conn, key.org_id)}


@router.delete("/suppressions/{address}")
def delete_suppression(
    address: str, key: ApiKey = needs(Capability.EDIT), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Email the address again (recorded in each holder's consent trail)."""
    if len(address) > 320 or not address.isprintable():
        message = "address: longer than 320 characters or holds control characters"
        raise ApiError(422, "invalid_request", message, [{"field": "path.address"}])
    with ctx.services.transaction() as conn:
        count = lift_suppression(conn, key.org_id, address, actor=f"api:{key.key_id}")
    if not count:
        raise ApiError(404, "not_found", f"{address} is not suppressed")
    return {"address": address.lower(), "lifted": count}

"""The organisation's webhook endpoints over HTTP (admin keys only): the ``herald webhooks``
operations, each on the key's own organisation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs
from producers.webhooks import operations as ops
from schemas.access import Capability

router = APIRouter(prefix="/webhook-endpoints", tags=["webhooks"])
ADMIN = Capability.MANAGE_WEBHOOKS


class NewEndpoint(BaseModel):
    """An endpoint to register."""

    url: str = Field(..., max_length=4000, examples=["https://billing.example.com/herald"])
    events: list[str] | None = Field(
        None,
        max_length=50,
        description="event types it receives; all when absent",
        examples=[["notification.sent"]],
    )


class Rotation(BaseModel):
    """How long the previous secret keeps signing (default: ``HERALD_WEBHOOK_SECRET_OVERLAP_HOURS``)."""

    overlap_hours: float | None = Field(None, ge=0, le=720)


class Replay(BaseModel):
    """Send again every event since this time (ISO 8601)."""

    since: datetime


@router.post("", status_code=201)
def add_endpoint(
    body: NewEndpoint, key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Register an endpoint: its id and ``whsec_`` secret, shown only in this answer."""
    return ops.add(ctx.services, key.org_id, body.url, body.events)


@router.get("")
def list_endpoints(key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)) -> dict[str, Any]:
    """The organisation's endpoints (never their secrets), paused ones with the reason."""
    return {"endpoints": ops.list_(ctx.services, key.org_id)}


@router.delete("/{endpoint_id}")
def remove_endpoint(
    endpoint_id: str, key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Stop sending to an endpoint."""
    ops.remove(ctx.services, key.org_id, endpoint_id)
    return {"endpoint_id": endpoint_id, "removed": True}


@router.post("/{endpoint_id}/rotate-secret")
def rotate_secret(
    endpoint_id: str,
    body: Rotation | None = None,
    key: ApiKey = needs(ADMIN),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """A new secret (shown only here); the previous ones keep signing for the overlap."""
    return ops.rotate(ctx.services, key.org_id, endpoint_id, body.overlap_hours if body else None)


@router.post("/{endpoint_id}/test")
def send_test(
    endpoint_id: str, key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Send a signed ``webhook.test`` event now; what the endpoint answered."""
    return ops.send_test(ctx.services, key.org_id, endpoint_id)


@router.get("/{endpoint_id}/deliveries")
def deliveries(
    endpoint_id: str,
    limit: int = Query(100, ge=1, le=1000),
    key: ApiKey = needs(ADMIN),
    ctx: ApiContext = Depends(context),
) -> dict[str, Any]:
    """The endpoint's latest attempts, newest first (time, event, type, response code, outcome)."""
    return {"attempts": ops.deliveries(ctx.services, key.org_id, endpoint_id, limit)}


@router.post("/{endpoint_id}/replay")
def replay(
    endpoint_id: str, body: Replay, key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Send again every event since ``since`` (with the same ``webhook-id``)."""
    return ops.replay(ctx.services, key.org_id, endpoint_id, body.since)


@router.post("/{endpoint_id}/resume")
def resume(
    endpoint_id: str, key: ApiKey = needs(ADMIN), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Unpause an endpoint: what waited is sent now, in order."""
    return ops.resume(ctx.services, key.org_id, endpoint_id)

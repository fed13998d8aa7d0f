"""Manual notify over HTTP: preview, then send exactly what the preview showed."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from infra.masking import mask_recipient
from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs, revealed
from producers.operations.notify import Prepared, prepare, send_prepared
from schemas.access import Capability
from schemas.events import Id

router = APIRouter(tags=["notify"])


class NotifyRequest(BaseModel):
    """Which stored invoice event to notify of (default: its latest), as what, on which channel."""

    model_config = ConfigDict(extra="forbid")

    # The contract's id shape: an id no event can have (NUL, controls, spaces) is a 422 naming the
    # field, never a database round trip (PostgreSQL refuses NUL in text with an error).
    invoice_id: Id
    event_id: Id | None = None
    kind: Literal["invoice", "payment_reminder", "payment_thank_you"] | None = None
    channel: Literal["sms", "email"] | None = None


class PreviewRequest(NotifyRequest):
    """A preview; ``reveal`` shows full numbers and addresses (admin keys only)."""

    reveal: bool = False


class SendRequest(NotifyRequest):
    """A send: ``preview`` is the id a preview answered; anything else is refused (409)."""

    preview: str = Field(..., min_length=1, max_length=64)


def _prepare(body: NotifyRequest, key: ApiKey, ctx: ApiContext) -> Prepared:
    """The notification the request names, in the key's organisation, as a preview shows it."""
    return prepare(
        ctx.services,
        body.invoice_id,
        org_id=key.org_id,
        event_id=body.event_id,
        kind=body.kind,
        channel=body.channel,
    )


@router.post("/notify/preview")
def preview(
    body: PreviewRequest, key: ApiKey = needs(Capability.VIEW), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Each recipient: number or address, the message, encoding, segments and cost, or why it is
    skipped; ``preview`` is the id ``/notify/send`` needs."""
    show = revealed(key, body.reveal)
    prepared = _prepare(body, key, ctx)
    recipients = [
        {**asdict(line), "recipient": line.recipient if show else mask_recipient(line.recipient)}
        for line in prepared.lines
    ]
    return {"preview": prepared.fingerprint, "recipients": recipients}


@router.post("/notify/send", status_code=202)
def send(
    body: SendRequest, key: ApiKey = needs(Capability.SEND), ctx: ApiContext = Depends(context)
) -> dict[str, Any]:
    """Send exactly what the preview showed (409 when it changed since), recorded as a manual send."""
    prepared = _prepare(body, key, ctx)
    event_id, pending = send_prepared(ctx.services, prepared, body.preview)
    return {"event_id": event_id, "notifications": pending}

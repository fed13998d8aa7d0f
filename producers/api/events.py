"""``POST /events``: one event or a batch, validated and published with confirms, as ``herald publish``.

Every request publishes over the api's one kept connection (``ApiContext.publisher``): the events
of requests that arrive together go out together, in batches, and each request is answered once
RabbitMQ confirmed its own."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from infra.errors import InvalidEvent, PublishError
from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs
from producers.api.errors import ApiError
from producers.publisher import SharedPublisher
from schemas.access import Capability
from schemas.bounded_json import loads_bounded
from schemas.validation import parse_event

router = APIRouter(tags=["events"])

_EXAMPLE = {
    "type": "invoice.created",
    "event_id": "evt_01",
    "org_id": "acme",
    "occurred_at": "2026-11-23T10:00:00Z",
    "data": {"invoice": {"id": "INV-1", "number": "1001", "customer_id": "C1", "currency": "EUR"}},
}

# The body is read and decoded here, not by FastAPI: its JSON parser recurses once per level and
# answers a body nested thousands deep with a bare 400, and an item nested too deep must be
# rejected on its own, beside good items that are still published. So the schema is stated here.
_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "description": "one event (`herald schema`)"},
                        {"type": "array", "items": {}, "minItems": 1, "description": "a batch of events"},
                    ]
                },
                "example": _EXAMPLE,
            }
        },
    }
}


async def _body(request: Request) -> bytes:
    """The raw body (the body limit applies while it is read)."""
    return await request.body()


def _malformed(message: str) -> ApiError:
    detail = {"field": "body", "message": message, "type": "json_invalid"}
    return ApiError(422, "invalid_request", f"invalid request: body: {message}", [detail])


def _items(raw: bytes, max_depth: int, max_batch: int) -> list[Any]:
    """The events of a body: an object is one, an array a batch of at most ``max_batch``."""
    try:
        text = raw.decode("utf-8-sig")  # JSON is UTF-8 (RFC 8259); a byte order mark is ignored
    except UnicodeDecodeError as exc:
        raise _malformed(f"not UTF-8 text: {exc}") from None
    try:
        # One more level than an event may have: the array around a batch.
        body = loads_bounded(text, max_depth + 1)
    except json.JSONDecodeError as exc:
        raise _malformed(f"malformed JSON: {exc}") from None
    if isinstance(body, dict):
        return [body]
    if not isinstance(body, list):
        raise ApiError(
            422,
            "invalid_request",
            "invalid request: body: must be an event (a JSON object) or a batch (a JSON array of "
            f"events), got {type(body).__name__}",
            [{"field": "body", "message": "an object or an array", "type": "type_error"}],
        )
    if not body:
        raise ApiError(
            422, "invalid_request", "an empty batch: send one event or a non-empty array of events"
        )
    if len(body) > max_batch:
        # Refused whole, before any item is looked at: the client is to split it, not fix items.
        raise ApiError(
            413,
            "batch_too_large",
            f"a batch of {len(body)} events is over the limit of {max_batch} events per request "
            "(HERALD_MAX_BATCH_EVENTS); split it into smaller batches",
            [
                {
                    "field": "body",
                    "limit": max_batch,
                    "setting": "HERALD_MAX_BATCH_EVENTS",
                    "events": len(body),
                }
            ],
        )
    return body


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _check(
    item: Any, org_id: str, publisher: SharedPublisher, max_bytes: int, max_depth: int
) -> tuple[str, bytes]:
    """One event as ``herald publish`` checks a line, encoded for sending; it must be of the
    key's organisation, checked on the parsed event whatever shape it came in (an object, or a
    string holding one)."""
    # An object naming another organisation is refused before anything else is said about it.
    if isinstance(item, dict) and "org_id" in item and item["org_id"] != org_id:
        raise InvalidEvent(
            f"org_id: {_shown(item['org_id'])} is not this API key's organisation ({org_id!r})"
        )
    event = parse_event(item, max_bytes=max_bytes, max_depth=max_depth)
    if event.org_id != org_id:  # whatever shape the event came in: the parsed one is what is sent
        raise InvalidEvent(f"org_id: {event.org_id!r} is not this API key's organisation ({org_id!r})")
    return publisher.encode(event)  # the size limit on the message as it will be sent


@router.post(
    "/events",
    status_code=202,
    openapi_extra=_REQUEST_BODY,
    responses={
        207: {"description": "Some events were rejected (listed with index and reason); the rest published."},
        413: {"description": "The body or the batch is over its limit; nothing published."},
        422: {"description": "Every event was rejected, or the body is not JSON; nothing published."},
        503: {"description": "RabbitMQ did not confirm; `details` lists the event ids it did confirm."},
    },
)
def publish_events(
    key: ApiKey = needs(Capability.SEND),
    raw: bytes = Depends(_body),
    ctx: ApiContext = Depends(context),
) -> JSONResponse:
    """Publish one event (an object) or a batch (an array); answers once RabbitMQ confirmed them.

    Each event is validated like a line of ``herald publish``, and its ``org_id`` must be the
    key's organisation. A bad event is reported with its index and reason and the good ones
    are still published: 202 all published, 207 some rejected, 422 none published. A batch of
    more than ``HERALD_MAX_BATCH_EVENTS`` events is refused whole (413).
    """
    settings = ctx.settings
    items = _items(raw, settings.max_json_depth, settings.max_batch_events)
    publisher = ctx.publisher  # the api's one connection, shared by every request
    good: list[tuple[str, bytes]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            good.append(
                _check(item, key.org_id, publisher, settings.max_event_bytes, settings.max_json_depth)
            )
        except InvalidEvent as exc:
            rejected.append({"index": index, "reason": exc.reason})
    if not good:
        what = "the event was" if len(items) == 1 else f"all {len(items)} events were"
        raise ApiError(422, "invalid_events", f"{what} rejected; nothing published", rejected)
    try:
        publisher.publish_encoded(good)
    except PublishError as exc:
        raise ApiError(
            503,
            "publish_failed",
            f"publishing failed: {exc}; only the events in details were confirmed by RabbitMQ",
            [{"event_id": event_id} for event_id in exc.confirmed],
        ) from None
    status = 207 if rejected else 202
    report = {"published": [event_id for event_id, _ in good], "rejected": rejected}
    return JSONResponse(report, status_code=status)

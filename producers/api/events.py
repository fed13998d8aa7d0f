"""``POST /events``: one event or a batch, validated and published with confirms, as ``herald publish``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse

from infra.errors import InvalidEvent, PublishError
from infra.store.api_keys import ApiKey
from producers.api.auth import ApiContext, context, needs
from producers.api.errors import ApiError
from producers.publisher import Publisher
from schemas.access import Capability
from schemas.events import Event
from schemas.validation import EventRejected, parse_event

router = APIRouter(tags=["events"])

_EXAMPLE = {
    "type": "invoice.created",
    "event_id": "evt_01",
    "org_id": "acme",
    "occurred_at": "2026-11-23T10:00:00Z",
    "data": {"invoice": {"id": "INV-1", "number": "1001", "customer_id": "C1", "currency": "EUR"}},
}


def _check(item: Any, org_id: str, publisher: Publisher, max_bytes: int) -> Event:
    """One event as ``herald publish`` checks a line, and it must be the key's organisation's."""
    if isinstance(item, dict) and "org_id" in item and item["org_id"] != org_id:
        raise EventRejected(f"org_id: {item['org_id']!r} is not this API key's organisation ({org_id!r})")
    event = parse_event(item, max_bytes=max_bytes)
    try:
        publisher.encode(event)  # the size limit on the message as it will be sent
    except InvalidEvent as exc:
        raise EventRejected(str(exc)) from None
    return event


@router.post(
    "/events",
    status_code=202,
    responses={
        207: {"description": "Some events were rejected (listed with index and reason); the rest published."},
        422: {"description": "Every event was rejected; nothing published."},
        503: {"description": "RabbitMQ did not confirm; `details` lists the event ids it did confirm."},
    },
)
def publish_events(
    body: dict[str, Any] | list[Any] = Body(..., examples=[_EXAMPLE]),
    key: ApiKey = needs(Capability.SEND),
    ctx: ApiContext = Depends(context),
) -> JSONResponse:
    """Publish one event (an object) or a batch (an array); answers once RabbitMQ confirmed them.

    Each event is validated like a line of ``herald publish``, and its ``org_id`` must be the
    key's organisation. A bad event is reported with its index and reason and the good ones
    are still published: 202 all published, 207 some rejected, 422 none published.
    """
    items = body if isinstance(body, list) else [body]
    if not items:
        raise ApiError(
            422, "invalid_request", "an empty batch: send one event or a non-empty array of events"
        )
    publisher = Publisher(ctx.settings)  # connects on its first publish, per request
    good: list[Event] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            good.append(_check(item, key.org_id, publisher, ctx.settings.max_event_bytes))
        except EventRejected as exc:
            rejected.append({"index": index, "reason": exc.reason})
    if not good:
        what = "the event was" if len(items) == 1 else f"all {len(items)} events were"
        raise ApiError(422, "invalid_events", f"{what} rejected; nothing published", rejected)
    try:
        with publisher:
            publisher.publish_many(good)
    except PublishError as exc:
        raise ApiError(
            503,
            "publish_failed",
            f"publishing failed: {exc}; only the events in details were confirmed by RabbitMQ",
            [{"event_id": event_id} for event_id in exc.confirmed],
        ) from None
    status = 207 if rejected else 202
    report = {"published": [e.event_id for e in good], "rejected": rejected}
    return JSONResponse(report, status_code=status)

"""Turning raw input into events, with errors that say what was wrong and where."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from schemas.events import EVENT_TYPES, Event, event_adapter


class EventRejected(ValueError):
    """One event failed validation; ``reason`` is a one-line human explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(event)"


def describe_validation_error(error: ValidationError) -> str:
    """``data.invoice.total: Field required; org_id: ...`` — field paths first."""
    messages = []
    for item in error.errors(include_url=False):
        # The tagged-union member name (e.g. 'invoice.created') is noise in a path.
        loc = tuple(p for p in item["loc"] if p not in EVENT_TYPES)
        messages.append(f"{_loc(loc)}: {item['msg']}")
    return "; ".join(messages)


def parse_event(raw: str | bytes | dict[str, Any], *, max_bytes: int | None = None) -> Event:
    """Validate one event from JSON text or a decoded object.

    Raises ``EventRejected`` naming the problem: not JSON, too large, unknown
    ``type``, or each missing/invalid field with its path.
    """
    if isinstance(raw, str | bytes):
        size = len(raw.encode() if isinstance(raw, str) else raw)
        if max_bytes is not None and size > max_bytes:
            raise EventRejected(f"event is {size} bytes, over the limit of {max_bytes} bytes")
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EventRejected(f"not valid JSON: {exc}") from None
    else:
        obj = raw
        if max_bytes is not None:
            size = len(json.dumps(obj, default=str).encode())
            if size > max_bytes:
                raise EventRejected(f"event is {size} bytes, over the limit of {max_bytes} bytes")
    if not isinstance(obj, dict):
        raise EventRejected(f"an event must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind is None:
        raise EventRejected("type: Field required")
    if kind not in EVENT_TYPES:
        raise EventRejected(f"type: unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}")
    try:
        return event_adapter.validate_python(obj)
    except ValidationError as exc:
        raise EventRejected(describe_validation_error(exc)) from None


def event_to_json(event: Event) -> dict[str, Any]:
    """The event as JSON primitives, ready for a message body."""
    return event.model_dump(mode="json", by_alias=True)

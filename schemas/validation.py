"""Turning raw input into events, with errors that say what was wrong and where."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from infra.errors import InvalidEvent
from schemas.bounded_json import Path, find_string, loads_bounded, too_deep
from schemas.events import (
    EVENT_TYPES,
    Event,
    describe_character,
    event_adapter,
    explain_mismatch,
    first_lone_surrogate,
)

#: The deepest nesting any setting allows (``HERALD_MAX_JSON_DEPTH`` is at most 200); pydantic
#: cannot serialise much past 255 levels. The default of ``parse_event`` for trusted callers:
#: producers pass the setting.
DEPTH_CEILING = 200

# The objects of the contract itself: a path through them is not yet a field of its own.
_CONTRACT_OBJECTS: frozenset[Path] = frozenset(
    {("data",), ("data", "invoice"), ("data", "payment"), ("data", "reminder")}
)
# Built once: json.dumps with options builds a new encoder on every call.
_UTF8 = json.JSONEncoder(ensure_ascii=False, skipkeys=True, default=str)
#: Problems of one event listed in its reason; the rest are counted.
MAX_PROBLEMS = 10
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]{1,60}")


def _loc(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif _PLAIN_KEY.fullmatch(item):
            parts.append(("." if parts else "") + item)
        else:  # an odd name is shown quoted, escaped and short: never raw control characters
            quoted = json.dumps(item if len(item) <= 40 else item[:40] + "…")
            parts.append(f"[{quoted}]")
    return "".join(parts) or "(event)"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"


def describe_validation_error(error: ValidationError) -> str:
    """``data.invoice.total: Field required; org_id: ...`` — field paths first.

    At most ``MAX_PROBLEMS`` are listed and the rest counted: a reason travels in an AMQP header
    and an API answer, and an event of thousands of bad fields must not make it huge.
    """
    problems = error.errors(include_url=False)
    messages = []
    for item in problems[:MAX_PROBLEMS]:
        # The tagged-union member name (e.g. 'invoice.created') is noise in a path.
        loc = tuple(p for p in item["loc"] if p not in EVENT_TYPES)
        messages.append(f"{_loc(loc)}: {_message(item)}")
    more = len(problems) - MAX_PROBLEMS
    if more <= 0:
        return "; ".join(messages)
    return "; ".join(messages) + f" (and {more} more problem{'s' if more > 1 else ''})"


def _message(item: Any) -> str:
    """pydantic's message, or plainer words where a contract string failed its pattern."""
    if item["type"] == "string_pattern_mismatch":
        plainer = explain_mismatch(item.get("input"), str(item.get("ctx", {}).get("pattern", "")))
        if plainer is not None:
            return plainer
    return str(item["msg"])


def _field_of(path: Path) -> Path:
    """The field of the event a path runs through: ``data.invoice.extra`` for a path into it."""
    end = 1
    while end < len(path) and path[:end] in _CONTRACT_OBJECTS:
        end += 1
    return path[:end]


def _unencodable(obj: Any) -> bool:
    """Whether ``obj`` holds a string UTF-8 cannot encode (a lone surrogate): the quick test, in
    C, before a walk that finds where. ``obj`` is bounded in depth already."""
    try:
        _UTF8.encode(obj).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_json(obj: Any, max_depth: int) -> None:
    """Refuse what no event may hold anywhere, extra fields included: nesting deeper than
    ``max_depth`` levels, and lone surrogates (not text; nothing downstream can encode them)."""
    deep = too_deep(obj, max_depth)
    if deep is not None:
        raise InvalidEvent(f"{_loc(_field_of(deep))}: nested deeper than {max_depth} levels")
    found = find_string(obj, lambda s: first_lone_surrogate(s) is not None) if _unencodable(obj) else None
    if found is not None:
        path, text = found
        surrogate = first_lone_surrogate(text) or ""
        raise InvalidEvent(f"{_loc(path)}: contains {describe_character(surrogate)}")


def parse_event(
    raw: str | bytes | dict[str, Any],
    *,
    max_bytes: int | None = None,
    max_depth: int = DEPTH_CEILING,
) -> Event:
    """Validate one event from JSON text (UTF-8 when bytes) or a decoded object.

    Raises ``InvalidEvent`` naming the problem: not UTF-8, not JSON, too large, nested deeper
    than ``max_depth`` levels, unknown ``type``, or each missing/invalid field with its path.
    """
    if isinstance(raw, str | bytes):
        size = len(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)
        if max_bytes is not None and size > max_bytes:
            raise InvalidEvent(f"event is {size} bytes, over the limit of {max_bytes} bytes")
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            raise InvalidEvent(f"not UTF-8 text: {exc}") from None
        try:
            obj = loads_bounded(text, max_depth)
        except json.JSONDecodeError as exc:
            raise InvalidEvent(f"not valid JSON: {exc}") from None
        check_json(obj, max_depth)
    else:
        obj = raw
        check_json(obj, max_depth)  # before measuring: json.dumps recurses
        if max_bytes is not None:
            size = len(json.dumps(obj, default=str).encode())
            if size > max_bytes:
                raise InvalidEvent(f"event is {size} bytes, over the limit of {max_bytes} bytes")
    if not isinstance(obj, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind is None:
        raise InvalidEvent("type: Field required")
    if kind not in EVENT_TYPES:
        raise InvalidEvent(
            f"type: unknown event type {_shown(kind)}; expected one of {', '.join(EVENT_TYPES)}"
        )
    try:
        return event_adapter.validate_python(obj)
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc)) from None


def event_to_json(event: Event) -> dict[str, Any]:
    """The event as JSON primitives, ready for a message body."""
    return event.model_dump(mode="json", by_alias=True)

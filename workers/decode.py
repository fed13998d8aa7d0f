"""Decoding message bodies: anything malformed is a permanent error, dead-lettered."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from infra.errors import InvalidEvent, MalformedMessage
from schemas.events import Event
from schemas.messages import StageMessage
from schemas.validation import DEPTH_CEILING, parse_event

M = TypeVar("M", bound=StageMessage)


def decode(model: type[M], body: Any) -> M:
    """Validate a stage message body; ``MalformedMessage`` says what is wrong."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise MalformedMessage(f"{model.name}: {exc.errors(include_url=False)}") from None


def decode_event(body: Any) -> Event:
    """Validate an event envelope that reached the route stage.

    The producers held it to ``HERALD_MAX_JSON_DEPTH`` already; here only the ceiling no setting
    passes applies, so a limit lowered since cannot dead-letter events already in the queue.
    """
    try:
        return parse_event(body if isinstance(body, dict) else str(body), max_depth=DEPTH_CEILING)
    except InvalidEvent as exc:
        raise MalformedMessage(f"event: {exc.reason}") from None

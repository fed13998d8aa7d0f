"""What a log line is about: the notification, event and stage of the message being processed.

Kept in a ``ContextVar``: each dramatiq worker thread processes one message at a time, and a
context variable set in that thread is seen by every log call it makes (ours, dramatiq's,
SQLAlchemy's), with no ``extra=`` to remember. ``infra.logs`` adds it to every JSON line.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

#: Keys a line may be tagged with.
KEYS = ("notification_id", "event_id", "org_id", "stage")

_context: ContextVar[dict[str, str] | None] = ContextVar("herald_log_context", default=None)


def current() -> dict[str, str]:
    """The ids bound in this thread (empty outside a message)."""
    return dict(_context.get() or {})


def bind(**ids: Any) -> None:
    """Tag this thread's next log lines with ids (None values are ignored)."""
    merged = current()
    merged.update({k: str(v) for k, v in ids.items() if v is not None})
    _context.set(merged)


def clear() -> None:
    """Forget the ids: the message is done."""
    _context.set(None)


def ids_from_body(body: Any) -> dict[str, str]:
    """The ids a stage message or an event envelope carries (``data.invoice`` is not an id of ours)."""
    if not isinstance(body, dict):
        return {}
    return {k: str(body[k]) for k in ("notification_id", "event_id", "org_id") if body.get(k) is not None}

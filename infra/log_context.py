"""What a log line is about: the notification, event and stage of the message being processed.

Kept in a ``ContextVar``: each dramatiq worker thread processes one message at a time, and a
context variable set in that thread is seen by every log call it makes (ours, dramatiq's,
SQLAlchemy's), with no ``extra=`` to remember. ``infra.logs`` adds it to every JSON line.

A batch message names many items: its stage binds each item's ids around the lines it logs about
that item (``bound``). An id that costs a look-up to find (a single notification's event id) can
be bound lazily (``bind_lazy``): it is looked up only when a line is actually logged, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Keys a line may be tagged with.
KEYS = ("notification_id", "event_id", "org_id", "stage")

_context: ContextVar[dict[str, str] | None] = ContextVar("herald_log_context", default=None)
#: Ids bound lazily, not looked up yet: key → the function that finds it (``None``: none).
_lazy: ContextVar[dict[str, Callable[[], str | None]] | None] = ContextVar("herald_log_lazy", default=None)


def current() -> dict[str, str]:
    """The ids bound in this thread (empty outside a message); a lazily bound id is looked up
    now, once (what it finds stays bound)."""
    lazy = _lazy.get()
    if lazy:
        ids = _context.get() or {}
        due = {key: find for key, find in lazy.items() if key not in ids}
        if due:
            # Taken off first: a look-up that logs must not look itself up again.
            _lazy.set({key: find for key, find in lazy.items() if key in ids} or None)
            bind(**{key: find() for key, find in due.items()})
    return dict(_context.get() or {})


def bind(**ids: Any) -> None:
    """Tag this thread's next log lines with ids (None values are ignored)."""
    merged = dict(_context.get() or {})
    merged.update({k: str(v) for k, v in ids.items() if v is not None})
    _context.set(merged)


def bind_lazy(**finders: Callable[[], str | None]) -> None:
    """Tag this thread's next log lines with ids found by calling ``finders`` only when a line is
    logged (at most once each); an id bound with ``bind`` wins."""
    merged = dict(_lazy.get() or {})
    merged.update(finders)
    _lazy.set(merged)


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Tag the lines logged inside the block with ids (an item of a batch), then restore the
    message's own."""
    before, lazy = _context.get(), _lazy.get() or {}
    bind(**ids)
    try:
        yield
    finally:
        # The message's own ids again, with what was looked up lazily inside the block kept (and
        # not looked up again); what the block bound lazily itself is dropped with it.
        after, still = _context.get() or {}, _lazy.get() or {}
        found = {k: after[k] for k in lazy if k not in still and k not in ids and k in after}
        _context.set({**(before or {}), **found} or None)
        _lazy.set({k: find for k, find in lazy.items() if k in still} or None)


def clear() -> None:
    """Forget the ids: the message is done."""
    _context.set(None)
    _lazy.set(None)


def ids_from_body(body: Any) -> dict[str, str]:
    """The ids a stage message or an event envelope carries (``data.invoice`` is not an id of ours)."""
    if not isinstance(body, dict):
        return {}
    return {k: str(body[k]) for k in ("notification_id", "event_id", "org_id") if body.get(k) is not None}

"""Binds the message's notification id, event id and stage to every log line it produces."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dramatiq.middleware import Middleware

from infra import log_context
from infra.metrics import stage_of
from infra.store.lookups import event_id_of

if TYPE_CHECKING:
    from infra.bootstrap import Services

logger = logging.getLogger("herald.log_context")

#: Notification → event ids remembered per process (they never change); bounded.
_CACHE_SIZE = 10_000


class LogContext(Middleware):
    """Sets ``infra.log_context`` from the message body before it runs, clears it after.

    A single-item message between stages carries only the notification id; its event id is bound
    lazily (``log_context.bind_lazy``): read from the store (a primary-key read, remembered) only
    if the message logs a line, so a message that logs nothing costs no read. A batch message
    names no single item: its stage binds each item's ids around the lines it logs about it. Must
    be first in the broker's list: its ``before`` runs first and its ``after`` last (after the
    dead-letter log). ``services`` gives the process's booted services (none: no look-up).
    """

    def __init__(self, queue_prefix: str, services: Callable[[], Services] | None = None) -> None:
        self.queue_prefix = queue_prefix
        self.services = services
        self._events: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # worker threads share the remembered ids

    def before_process_message(self, broker: Any, message: Any) -> None:
        body = message.args[0] if message.args else None
        ids = log_context.ids_from_body(body)
        log_context.clear()
        log_context.bind(stage=stage_of(message.queue_name, self.queue_prefix), **ids)
        nid = ids.get("notification_id")
        if nid and "event_id" not in ids and self.services is not None:
            log_context.bind_lazy(event_id=lambda: self._event_of(nid))

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        log_context.clear()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        log_context.clear()

    def _event_of(self, nid: str) -> str | None:
        with self._lock:
            if nid in self._events:
                self._events.move_to_end(nid)
                return self._events[nid]
        event_id = lookup_event_id(self.services, nid) if self.services is not None else None
        if event_id:
            with self._lock:
                self._events[nid] = event_id
                if len(self._events) > _CACHE_SIZE:
                    self._events.popitem(last=False)
        return event_id


def lookup_event_id(services: Callable[[], Services], nid: str) -> str | None:
    """The event a notification came from, or None (store not booted, unknown id, store down)."""
    try:
        with services().reading() as conn:
            return event_id_of(conn, nid)
    except Exception:  # a logging aid must never fail the message; the actor meets the error itself
        logger.debug("event id lookup failed", exc_info=True)
        return None

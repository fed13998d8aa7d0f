"""A bound on graceful shutdown for the plain (non-dramatiq) processes: ingest, scheduler, api.

On SIGTERM each finishes the work in hand; should that hang (RabbitMQ or the database gone
mid-call), the process exits anyway after ``HERALD_SHUTDOWN_TIMEOUT_SECONDS``. Nothing is lost
by it: unacked messages return to their queue when the connection drops, and an unconfirmed
reminder claim is re-published later.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger("herald.shutdown")


def exit_after(seconds: float, code: int = 1) -> threading.Timer:
    """Start a daemon timer that ends the process with ``code`` after ``seconds``."""

    def expire() -> None:
        logger.warning("graceful shutdown timed out; exiting", extra={"timeout_s": seconds})
        os._exit(code)  # the work in hand did not finish in time: its messages are redelivered

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer

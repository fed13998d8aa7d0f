"""Counts every stage message by outcome and times it (Prometheus, ``infra.metrics``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from infra import metrics
from infra.retry_policy import is_permanent


class Metrics(Middleware):
    """Per stage: messages by outcome, retries by kind, processing time.

    Must come *before* ``Retries`` in the broker's list: dramatiq calls ``after_*`` hooks in
    reverse order, so this one runs after ``Retries`` has decided whether the message failed.
    """

    def __init__(self, queue_prefix: str) -> None:
        self.queue_prefix = queue_prefix
        # One try per thread at a time: the start time lives with the thread that runs it.
        self._local = threading.local()

    def before_process_message(self, broker: Any, message: Any) -> None:
        self._local.started = time.perf_counter()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        stage = metrics.stage_of(message.queue_name, self.queue_prefix)
        started = getattr(self._local, "started", None)
        if started is not None:
            metrics.DURATION.labels(stage=stage).observe(time.perf_counter() - started)
            self._local.started = None
        metrics.MESSAGES.labels(stage=stage, outcome=outcome(message, exception)).inc()
        if exception is not None and not message.failed:
            kind = "deferred" if isinstance(exception, dramatiq.Retry) else "error"
            metrics.RETRIES.labels(stage=stage, kind=kind).inc()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        # Skipped (expired by AgeLimit): failed without being run, so it goes to .XQ untried.
        stage = metrics.stage_of(message.queue_name, self.queue_prefix)
        metrics.MESSAGES.labels(stage=stage, outcome=metrics.DEAD_LETTERED).inc()


def outcome(message: Any, exception: BaseException | None) -> str:
    """ok, retried, failed (retries spent) or dead_lettered (permanent: never retried)."""
    if exception is None:
        return metrics.OK
    if not message.failed:
        return metrics.RETRIED
    return metrics.DEAD_LETTERED if is_permanent(exception) else metrics.FAILED

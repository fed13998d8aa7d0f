"""What every batch stage does with an item that fails alone: dead-letter it, with its reason, while
the rest of its batch goes on (``docs/guarantees.md``, "Batches")."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import CurrentMessage

from infra import log_context, metrics
from infra.bootstrap import Services
from infra.dead_letters import describe

logger = logging.getLogger("herald.batches")


def tries_so_far() -> int:
    """How many times the message being processed has been tried, this try included."""
    current = CurrentMessage.get_current_message()
    return int(current.options.get("retries", 0)) + 1 if current is not None else 1


def dead_letter_item(svc: Services, stage: str, actor: str, body: Any, error: BaseException) -> None:
    """Dead-letter one item of a batch alone, as the single-item message ``actor`` with ``body``
    (``herald dlq replay`` hands it back to the stage on its own), saying why; logged and counted
    as a dead-lettered message of ``stage``. Confirmed before it returns."""
    svc.emitter.dead_letter(stage, actor, body, error, attempts=tries_so_far())
    with log_context.bound(**log_context.ids_from_body(body)):
        logger.error("batch item dead-lettered", extra={"actor": actor, "reason": describe(error)[:1000]})
    metrics.MESSAGES.labels(stage=stage, outcome=metrics.DEAD_LETTERED).inc()

"""Says why a message was dead-lettered, in the log, when it is (the dead letters themselves:
``infra.dead_letters``)."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import Middleware

from infra.dead_letters import describe

logger = logging.getLogger("herald.dead_letters")


class DeadLetterLog(Middleware):
    """Logs the reason of every message that ends in a ``.XQ`` queue."""

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is not None and message.failed:
            logger.error(
                "message dead-lettered",
                extra={
                    "queue": message.queue_name,
                    "actor": message.actor_name,
                    "message_id": message.message_id,
                    "retries": message.options.get("retries", 0),
                    "reason": describe(exception),
                },
            )

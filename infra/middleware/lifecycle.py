"""Explicit start-up and shut-down of a worker process's services."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import Middleware

from infra.bootstrap import bootstrap, describe, shutdown
from infra.logs import configure_logging
from infra.settings import get_settings

logger = logging.getLogger("herald.lifecycle")


class Lifecycle(Middleware):
    """Boots the composition root before the worker consumes, disposes it after."""

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        settings = get_settings()
        configure_logging(settings.log_level, settings.log_format)
        booted = bootstrap(settings)
        logger.info("worker booted", extra=describe(booted))

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        shutdown()
        logger.info("worker shut down")

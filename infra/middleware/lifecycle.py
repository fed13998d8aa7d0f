"""Explicit start-up and shut-down of a worker process's services."""

from __future__ import annotations

import logging
from typing import Any

from dramatiq.middleware import Middleware

from infra.bootstrap import Services, bootstrap, describe, shutdown
from infra.broker import Emitter
from infra.errors import ConfigurationError
from infra.logs import configure_logging
from infra.settings import Settings

logger = logging.getLogger("herald.lifecycle")


class Lifecycle(Middleware):
    """Boots the process's services before its worker consumes, and shuts them down after.

    Added by the worker's composition root (``workers.start``), which hands ``services`` to the
    actors it declares. The boot happens in each worker process dramatiq forked, when its worker
    starts: no connection is opened before the fork. The services emit on the worker's broker.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._services: Services | None = None

    def before_worker_boot(self, broker: Any, worker: Any) -> None:
        configure_logging(self.settings)
        self._services = bootstrap(self.settings, emitter=Emitter(broker, self.settings.queue_prefix))
        logger.info("worker booted", extra=describe(self._services))

    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        booted, self._services = self._services, None
        if booted is not None:
            shutdown(booted)
        logger.info("worker shut down")

    def services(self) -> Services:
        """The booted services; an actor running before boot is a wiring bug."""
        if self._services is None:
            raise ConfigurationError(
                "the worker's services are not booted (Lifecycle boots them when it starts)"
            )
        return self._services

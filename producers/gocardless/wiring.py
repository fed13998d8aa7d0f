"""What the GoCardless handlers need, built on first use (never at import): the store, the reader
over the official client, and a publisher opened only when something is published."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from infra.adapters.gocardless_account import GoCardlessAccount
from infra.adapters.gocardless_client import build_gocardless_client
from infra.bootstrap import BootOnce, Services
from infra.settings import Settings


class GoCardlessWiring:
    """Lazily built services and reader for one process (the HTTP app, or one CLI command).

    ``services`` gives the process's services (by default, booted from ``settings`` on first use).
    """

    def __init__(self, settings: Settings, services: Callable[[], Services] | None = None) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._services = services or BootOnce(settings)
        self._reader: GoCardlessAccount | None = None

    @property
    def services(self) -> Services:
        return self._services()

    @property
    def reader(self) -> GoCardlessAccount:
        with self._lock:
            if self._reader is None:
                self._reader = GoCardlessAccount(build_gocardless_client(self.settings))
            return self._reader


class LazyPublisher:
    """A ``publish`` callable that connects to RabbitMQ on its first event; ``close()`` after."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._publisher: Any = None

    def __call__(self, event: dict[str, Any]) -> None:
        if self._publisher is None:
            from producers.publisher import Publisher

            self._publisher = Publisher(self._settings).__enter__()
        self._publisher.publish(event)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.__exit__(None, None, None)
            self._publisher = None

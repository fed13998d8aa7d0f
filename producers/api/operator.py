"""The operator API: keyed, per-organisation endpoints over the same operations as the CLI."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from infra.bootstrap import Services
from infra.settings import Settings
from producers.api import (
    consent,
    directory,
    events,
    history,
    local_time,
    notify,
    reminders,
    templates,
    webhook_endpoints,
)
from producers.api.auth import ApiContext
from producers.api.errors import install_error_handlers
from producers.api.limits import BodyLimit


def install_operator_api(app: FastAPI, settings: Settings, services: Callable[[], Services]) -> None:
    """Add the operator endpoints, the body size limit and the one error shape to ``app``.

    The limit and the error handlers cover the whole app (callbacks and webhooks too): one
    shape for every error the app answers.
    """
    app.state.operator_api = ApiContext(settings, services)
    app.router.on_shutdown.append(app.state.operator_api.close)  # the publisher's connection
    for module in (
        events,
        directory,
        consent,
        templates,
        notify,
        history,
        local_time,
        reminders,
        webhook_endpoints,
    ):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)

"""The worker processes' composition root: ``python -m dramatiq workers.start:<stage>``.

``herald worker STAGE`` runs dramatiq with one of the callables below as its broker argument.
dramatiq calls it in each worker process it forks, before the worker starts: it reads the
settings, builds the broker (no connection yet), adds the ``Lifecycle`` that boots the services
when the worker starts (in that process, after the fork), declares the stage's actors on the
broker with those services, and makes it dramatiq's broker. Importing this module builds nothing.

``metrics`` is the ``--fork`` process that serves the stage's ``/metrics``. dramatiq imports this
module in that process too, so the stages' code (the store, the adapters, every stage module) is
imported by ``start`` alone: the metrics process, which needs none of it, would otherwise spend a
second or two of CPU and ~40 MB importing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra.settings import Settings, get_settings

if TYPE_CHECKING:
    from infra.broker import HeraldBroker


def start(stage: str, settings: Settings) -> HeraldBroker:
    """Compose one worker process of ``stage``: its broker, its lifecycle and its actors."""
    import dramatiq

    from infra.broker import build_broker
    from infra.middleware.lifecycle import Lifecycle
    from workers.registry import declare

    lifecycle = Lifecycle(settings)
    broker = build_broker(settings, services=lifecycle.services)
    broker.add_middleware(lifecycle)
    dramatiq.set_broker(broker)
    declare(broker, lifecycle.services, [stage], queue_prefix=settings.queue_prefix)
    return broker


def _start(stage: str) -> None:
    """The settings are read here, once per worker process."""
    start(stage, get_settings())


def route() -> None:
    """``workers.start:route``."""
    _start("route")


def render() -> None:
    """``workers.start:render``."""
    _start("render")


def sms() -> None:
    """``workers.start:sms``."""
    _start("sms")


def email() -> None:
    """``workers.start:email``."""
    _start("email")


def history() -> None:
    """``workers.start:history``."""
    _start("history")


def collect() -> None:
    """``workers.start:collect``."""
    _start("collect")


def metrics() -> int:
    """``--fork workers.start:metrics``: the stage's ``/metrics`` server, in a process of its own."""
    from infra.metrics_http import serve_worker_metrics

    return serve_worker_metrics(get_settings())

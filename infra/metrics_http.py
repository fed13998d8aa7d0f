"""Serving ``/metrics``: one exposition server per stage, beside dramatiq's worker processes.

``herald worker STAGE`` makes a fresh, empty ``PROMETHEUS_MULTIPROC_DIR`` for the
stage and asks dramatiq to ``--fork`` ``workers.start:metrics``, which reads the
settings and runs :func:`serve_worker_metrics`: dramatiq's supervisor runs it as
one more child next to the worker processes and stops it with them. It adds up
every worker process's files, so one scrape covers the stage however many
``--processes`` it runs, and it survives a worker process being replaced. Plain
processes (ingest, scheduler) call :func:`serve` in-process.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from infra.logs import configure_logging
from infra.metrics import metrics_port
from infra.settings import Settings

logger = logging.getLogger("herald.metrics")


def exposition_registry(settings: Settings) -> CollectorRegistry:
    """What ``/metrics`` shows: every process's files in multiprocess mode, else this process's."""
    if settings.metrics_multiproc_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=settings.metrics_multiproc_dir)
        return registry
    return REGISTRY


def serve(process_type: str, settings: Settings) -> Any | None:
    """Start a ``/metrics`` server for ``process_type`` in a daemon thread; None when off or taken.

    A port that is already taken is logged and skipped: metrics must never stop a worker.
    """
    port = metrics_port(settings.metrics_port, process_type)
    if port is None:
        return None
    try:
        server, _thread = start_http_server(
            port, addr=settings.metrics_host, registry=exposition_registry(settings)
        )
    except OSError as exc:
        logger.warning("metrics port taken; /metrics not served", extra={"port": port, "error": str(exc)})
        return None
    logger.info("serving /metrics", extra={"process_type": process_type, "port": port})
    return server


def serve_worker_metrics(settings: Settings) -> int:
    """The dramatiq ``--fork`` process: serve the stage's ``/metrics`` until dramatiq stops us (SIGTERM)."""
    configure_logging(settings)
    if not settings.metrics_stage or serve(settings.metrics_stage, settings) is None:
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Waking every half second: Python runs signal handlers in the main thread only, and a main
    # thread blocked on a lock without a timeout is not woken by a signal another thread took.
    while not stop.wait(0.5):
        pass
    return 0

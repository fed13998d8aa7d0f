"""``herald scheduler``: publish due payment reminders (a Procfile line; run one or several)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from infra.bootstrap import bootstrap, describe, shutdown
from infra.logs import configure_logging
from infra.settings import get_settings
from infra.shutdown import exit_after
from producers.cli.console import err, out
from producers.publisher import Publisher
from producers.scheduler import Scheduler

log = logging.getLogger("herald.scheduler")


def scheduler(
    interval: float = typer.Option(60.0, min=0.1, help="Seconds between ticks."),
    once: bool = typer.Option(False, "--once", help="One tick, then exit (cron, tests)."),
) -> None:
    """Publish `reminder.due` for every unpaid invoice whose reminder has come, once each.

    Safe to run in several processes: each (invoice, offset) is claimed in the database first.
    Stops cleanly on SIGTERM or SIGINT (the tick in progress finishes).
    """
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            exit_after(settings.shutdown_timeout_seconds)  # a tick that hangs must not hold the stop
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = bootstrap(settings)
    log.info("scheduler booted", extra=describe(services))
    try:
        with Publisher(settings) as publisher:
            job = Scheduler(services, publisher)
            if once:
                report = job.tick()
                out.print(
                    f"published {len(report.published) + len(report.republished)}, "
                    f"superseded {report.superseded}",
                    markup=False,
                )
                return
            job.run(interval, stop)
    except Exception as exc:  # --once: a failed tick is exit 2, with the reason
        err.print(f"error: scheduler: {exc}", markup=False)
        raise typer.Exit(2) from None
    finally:
        shutdown()

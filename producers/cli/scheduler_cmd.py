"""``herald scheduler``: publish due payment reminders (a Procfile line; run one or several)."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

from infra import metrics_http
from infra.bootstrap import Services, bootstrap, describe, shutdown
from infra.logs import configure_logging
from infra.shutdown import exit_after
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings
from producers.publisher import Publisher
from producers.scheduler import Scheduler
from producers.status_sweep import StatusSweep

log = logging.getLogger("herald.scheduler")


def scheduler(
    interval: float = typer.Option(60.0, min=0.1, help="Seconds between ticks."),
    once: bool = typer.Option(False, "--once", help="One tick, then exit (cron, tests)."),
) -> None:
    """Publish `reminder.due` for every unpaid invoice whose reminder has come, once each.

    Safe to run in several processes: each (invoice, offset) is claimed in the database first.
    Stops cleanly on SIGTERM or SIGINT (the tick in progress finishes).
    """
    settings = cli_settings()
    configure_logging(settings)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            exit_after(settings.shutdown_timeout_seconds)  # a tick that hangs must not hold the stop
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    services = bootstrap(settings)
    log.info("scheduler booted", extra=describe(services))
    sweep = status_sweep(services)
    try:
        with Publisher(settings) as publisher:
            job = Scheduler(services, publisher, sweep=sweep.run_batch if sweep else None)
            if once:
                report = job.tick()
                out.print(
                    f"published {len(report.published) + len(report.republished)}, "
                    f"superseded {report.superseded}, deferred {len(report.deferred)}, "
                    f"released {len(report.released.released)} held, settled {len(report.released.settled)}",
                    markup=False,
                )
                if sweep is not None:
                    out.print(f"status sweep: {sweep.run_batch().summary()}", markup=False)
                return
            metrics_http.serve("scheduler", settings)  # never stops the scheduler (off, or port taken)
            job.run(interval, stop)
    except Exception as exc:  # --once: a failed tick is exit 2, with the reason
        err.print(f"error: scheduler: {exc}", markup=False)
        raise typer.Exit(2) from None
    finally:
        shutdown(services)


def status_sweep(services: Services) -> StatusSweep | None:
    """The status sweep of each tick, or None (logged) where Twilio is not configured or batch is 0."""
    settings = services.settings
    if not (settings.twilio_account_sid and settings.twilio_auth_token) or settings.status_sweep_batch == 0:
        log.info("status sweep off: no Twilio credentials, or HERALD_STATUS_SWEEP_BATCH=0")
        return None
    return StatusSweep(services)

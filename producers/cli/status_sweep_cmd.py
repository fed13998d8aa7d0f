"""``herald status-sweep``: look up at Twilio the SMS whose status callbacks never arrived."""

from __future__ import annotations

import typer

from infra.bootstrap import Services, bootstrap, require, shutdown
from infra.logs import configure_logging
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings
from producers.status_sweep import StatusSweep


def status_sweep(
    once: bool = typer.Option(
        False, "--once", help="One batch (HERALD_STATUS_SWEEP_BATCH, oldest first), as a scheduler tick does."
    ),
    after: float | None = typer.Option(
        None, min=0, help="Seconds an SMS must have been `sent` (default HERALD_STATUS_SWEEP_AFTER_SECONDS)."
    ),
) -> None:
    """Ask Twilio about every SMS `sent` for longer than the threshold and report to history those
    Twilio has moved on (delivered, undelivered, failed). The scheduler does this each tick; run it
    by hand after the api was down. Exit 0, or 2 when the sweep could not run."""
    settings = cli_settings()
    configure_logging(settings)
    services: Services | None = None
    try:
        require(settings, "twilio_account_sid", "twilio_auth_token")
        services = bootstrap(settings)
        sweep = StatusSweep(services, after=after)
        report = sweep.run_batch() if once else sweep.run_all()
    except Exception as exc:  # not configured, database or broker away: exit 2 with the reason
        err.print(f"error: status-sweep: {exc}", markup=False)
        raise typer.Exit(2) from None
    finally:
        if services is not None:
            shutdown(services)
    out.print(f"status sweep: {report.summary()}", markup=False)

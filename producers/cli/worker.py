"""``herald worker STAGE``: run one stage's dramatiq worker (a Procfile line each)."""

from __future__ import annotations

import os
import sys
import tempfile

import typer

from infra import topology
from infra.bootstrap import check_cluster, require
from infra.errors import ConfigurationError
from producers.cli.console import err
from producers.cli.context import settings as cli_settings

#: Settings a stage cannot start without.
REQUIRED: dict[str, tuple[str, ...]] = {
    "sms": ("twilio_account_sid", "twilio_auth_token", "twilio_from"),
    "email": ("smtp_from",),
    "collect": ("gocardless_access_token",),
}


def worker(
    stage: str = typer.Argument(..., help=f"One of: {', '.join(topology.STAGES + topology.PLAIN_STAGES)}."),
    processes: int | None = typer.Option(None, help="Worker processes (HERALD_WORKER_PROCESSES)."),
    threads: int | None = typer.Option(
        None, help="Threads per process (HERALD_WORKER_THREADS; 1 for a batch stage, else 4)."
    ),
) -> None:
    """Consume the stage's queue until SIGTERM (in-flight messages finish first)."""
    stages = topology.STAGES + topology.PLAIN_STAGES
    if stage not in stages:
        err.print(f"error: unknown stage {stage!r}; expected one of {', '.join(stages)}", markup=False)
        raise typer.Exit(2)
    settings = cli_settings()
    try:
        require(settings, *REQUIRED.get(stage, ()))
        check_cluster(settings, store=True)  # here, before dramatiq forks a process to fail each
    except ConfigurationError as exc:
        err.print(f"error: stage {stage}: {exc}", markup=False)
        raise typer.Exit(2) from None
    if stage in topology.PLAIN_STAGES:
        # A plain AMQP consumer (any upstream's JSON), not a dramatiq actor.
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", f"workers.{stage}"])  # noqa: S606
    argv = [
        sys.executable,
        "-m",
        "dramatiq",
        # The worker processes' composition root: dramatiq calls it in each process it forks, and it
        # builds the broker and declares the stage's actors there (nothing is built at import).
        f"workers.start:{stage}",
        "--queues",
        topology.queue_name(settings.queue_prefix, stage),
        "--processes",
        str(processes or settings.worker_processes),
        "--threads",
        str(threads or settings.threads_for(stage)),
        # SIGTERM: in-flight messages get this long to finish; the rest go back to the queue unacked.
        "--worker-shutdown-timeout",
        str(int(settings.shutdown_timeout_seconds * 1000)),
        # herald's Lifecycle middleware sets up structured logging in each worker process.
        "--skip-logging",
        *_metrics_fork(stage, settings.metrics_port),
    ]
    sys.stdout.flush()
    # Become the dramatiq process so the supervisor's signals reach it directly.
    os.execv(sys.executable, argv)  # noqa: S606


def _metrics_fork(stage: str, metrics_port: int) -> list[str]:
    """Set up multiprocess metrics for the stage and ask dramatiq to fork its ``/metrics`` server.

    The directory is new and empty each start: files left by a previous run's processes would
    otherwise be added to this run's counters.
    """
    if metrics_port == 0:
        return []
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"herald-metrics-{stage}-")
    os.environ["HERALD_METRICS_STAGE"] = stage
    return ["--fork", "workers.start:metrics"]

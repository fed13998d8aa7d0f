"""``herald status``: queue depths, consumers and rates per stage, from RabbitMQ; and the
providers' circuit breakers, from the store (docs/failover.md)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import typer
from rich.table import Table
from sqlalchemy.engine import make_url

from infra.amqp_nodes import describe
from infra.queue_status import as_json, collect
from infra.settings import Settings
from infra.store.breakers import all_breakers
from producers.cli.console import err, out
from producers.cli.context import services as cli_services
from producers.cli.context import settings as cli_settings
from workers.rules.breaker import Policy, current, reopens_in


def _cell(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def breakers(settings: Settings) -> list[dict[str, Any]] | None:
    """The providers' circuit breakers as they stand now (None: no store yet, nothing to show; a
    SQLite file that does not exist is not created for this)."""
    url = make_url(settings.database_url.get_secret_value())
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return None
    policy = Policy(
        failures=settings.sms_breaker_failures,
        window=settings.sms_breaker_window_seconds,
        cool_down=settings.sms_breaker_cool_down_seconds,
        trials=settings.sms_breaker_trials,
    )
    now = time.time()
    with cli_services().reading() as conn:
        stored = all_breakers(conn)
    shown: list[dict[str, Any]] = []
    for provider, (breaker, changed_at) in stored.items():
        state = current(breaker, policy, now)
        shown.append(
            {
                "provider": provider,
                "state": str(state.state),
                "failures": state.failures,
                "trials": state.trials,
                "since": datetime.fromtimestamp(changed_at, UTC).isoformat() if changed_at else None,
                "reopens_in_s": round(reopens_in(state, policy, now), 1),
            }
        )
    return shown


def status(
    as_json_: bool = typer.Option(False, "--json", help="One JSON object instead of a table."),
) -> None:
    """Per stage: messages ready, delayed (retries waiting) and dead-lettered, consumers, rates."""
    settings = cli_settings()
    try:
        report = collect(settings)
    except pika.exceptions.AMQPError as exc:
        nodes = describe(settings.amqp_urls)
        err.print(f"error: RabbitMQ at {nodes} did not answer: {type(exc).__name__}", markup=False)
        raise typer.Exit(2) from None
    shown = breakers(settings)
    if as_json_:
        typer.echo(json.dumps({**as_json(report), "breakers": shown or []}, indent=2))
        return
    sampled = report["rates_source"] == "sampled"
    table = Table(title=f"herald status ({report['prefix']})", caption=report["note"])
    for name in ("stage", "queue"):
        table.add_column(name)
    for name in ("ready", "delayed", "dead letters", "consumers"):
        table.add_column(name, justify="right")
    if sampled:
        table.add_column("ready Δ/s", justify="right")
    else:
        table.add_column("published/s", justify="right")
        table.add_column("delivered/s", justify="right")
    for row in report["stages"]:
        cells = [row.stage, row.queue, *map(_cell, (row.ready, row.delayed, row.dead_letters, row.consumers))]
        rates = [row.net_change_per_s] if sampled else [row.published_per_s, row.delivered_per_s]
        table.add_row(*cells, *map(_cell, rates))
    out.print(table)
    if shown:
        _print_breakers(shown)


def _print_breakers(shown: list[dict[str, Any]]) -> None:
    table = Table(title="circuit breakers (docs/failover.md)")
    for name in ("provider", "state", "failures", "trials", "since", "reopens in"):
        table.add_column(name)
    for b in shown:
        reopens = f"{b['reopens_in_s']:g}s" if b["state"] == "open" else "-"
        cells = (b["provider"], b["state"], str(b["failures"]), str(b["trials"]), b["since"] or "-", reopens)
        table.add_row(*cells)
    out.print(table)

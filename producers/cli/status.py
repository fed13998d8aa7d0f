"""``herald status``: queue depths, consumers and rates per stage, from RabbitMQ."""

from __future__ import annotations

import json

import pika
import typer
from rich.table import Table

from infra.amqp_nodes import describe
from infra.queue_status import as_json, collect
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings


def _cell(value: float | int | None) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


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
    if as_json_:
        typer.echo(json.dumps(as_json(report), indent=2))
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

"""``herald dlq``: what ended in the dead-letter queues, and why."""

from __future__ import annotations

import json

import pika
import typer
from pika.adapters.blocking_connection import BlockingChannel
from rich.table import Table

from infra import topology
from infra.masking import mask_text
from infra.settings import get_settings
from producers.cli.console import err, out

app = typer.Typer(help="Dead-lettered messages.", no_args_is_help=True)


def _channel() -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(get_settings().amqp_url.get_secret_value()))
    return connection, connection.channel()


@app.command("list")
def list_() -> None:
    """Dead letters waiting per stage."""
    prefix = get_settings().queue_prefix
    connection, _ = _channel()
    table = Table(title="dead letters")
    table.add_column("stage")
    table.add_column("queue")
    table.add_column("messages", justify="right")
    try:
        for stage in topology.PLAIN_STAGES + topology.STAGES:
            queue = topology.dead_letter_queue(topology.queue_name(prefix, stage))
            channel = connection.channel()
            try:
                count = channel.queue_declare(queue, passive=True).method.message_count
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                count = 0  # not declared yet: nothing ever failed there
            table.add_row(stage, queue, str(count))
    finally:
        connection.close()
    out.print(table)


@app.command("show")
def show(
    stage: str = typer.Argument(..., help="The stage whose dead letters to show."),
    limit: int = typer.Option(20, min=1, help="At most this many."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Peek at dead letters (they stay in the queue): the reason, and the message masked."""
    queue = topology.dead_letter_queue(topology.queue_name(get_settings().queue_prefix, stage))
    connection, channel = _channel()
    items = []
    tags = []
    try:
        for _ in range(limit):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            tags.append(method.delivery_tag)
            headers = properties.headers or {}
            reason = headers.get(topology.REASON_HEADER)
            if reason is None:
                try:  # a dramatiq message: its last retry kept the traceback
                    trace = json.loads(body).get("options", {}).get("traceback", "")
                    reason = trace.strip().splitlines()[-1] if trace else "(see the worker's log)"
                except (ValueError, AttributeError):
                    reason = "(see the worker's log)"
            items.append(
                {"reason": mask_text(str(reason)), "body": mask_text(body.decode("utf-8", "replace")[:300])}
            )
        for tag in tags:  # put them back: showing is not consuming
            channel.basic_nack(tag, requeue=True)
    except pika.exceptions.ChannelClosedByBroker:
        err.print(f"no dead-letter queue {queue} (nothing has failed in stage {stage})", markup=False)
        raise typer.Exit(1) from None
    finally:
        connection.close()
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    for number, item in enumerate(items, start=1):
        out.print(f"{number}. {item['reason']}\n   {item['body']}", markup=False)
    out.print(f"{len(items)} shown from {queue}")

"""``herald outbox relay``: publish an upstream's outbox rows, confirmed, in order."""

from __future__ import annotations

import signal
from types import FrameType

import typer

from infra.masking import redact_url
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings
from producers.outbox import relay
from producers.publisher import Publisher

app = typer.Typer(help="The transactional outbox of Python upstreams.", no_args_is_help=True)


@app.command("relay")
def relay_cmd(
    database: str = typer.Option(..., "--database", help="SQLAlchemy URL of the upstream's database."),
    batch: int = typer.Option(500, min=1, help="Rows per confirmed batch."),
    once: bool = typer.Option(False, "--once", help="Stop when nothing is pending."),
    poll: float = typer.Option(1.0, help="Seconds between looks when idle."),
) -> None:
    """Publish pending outbox rows in order; mark each sent only after RabbitMQ confirmed it."""
    stopping = {"now": False}

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    err.print(f"relaying the outbox of {redact_url(database)}", markup=False)
    with Publisher(cli_settings()) as publisher:
        sent = relay(
            database,
            publisher,
            batch=batch,
            poll_seconds=poll,
            once=once,
            should_stop=lambda: stopping["now"],
            on_sent=lambda n: err.print(f"sent {n}", markup=False),
        )
    out.print(f"relayed {sent} events")

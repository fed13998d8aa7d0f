"""``herald broker``: a local RabbitMQ for development, demos and tests."""

from __future__ import annotations

from pathlib import Path

import typer

from infra.masking import redact_url
from producers.cli.console import err, out
from producers.cli.context import settings as cli_settings

app = typer.Typer(help="Start, stop or check a local RabbitMQ node.", no_args_is_help=True)
DATA_DIR = Path(".herald/rabbitmq")


@app.command("up")
def up(data_dir: Path = typer.Option(DATA_DIR, help="Where the node keeps its data.")) -> None:
    """Use HERALD_AMQP_URL when it answers; otherwise start a node on 127.0.0.1."""
    from tooling.local import rabbitmq as rabbitmq_local

    url = cli_settings().amqp_url.get_secret_value()
    try:
        rabbitmq_local.ensure_broker(url, data_dir)
    except rabbitmq_local.BrokerStartError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    out.print(f"RabbitMQ answers at {redact_url(url)}", markup=False)


@app.command("down")
def down(data_dir: Path = typer.Option(DATA_DIR)) -> None:
    """Stop a node that ``herald broker up`` started."""
    from tooling.local import rabbitmq as rabbitmq_local

    stopped = rabbitmq_local.stop_broker(data_dir)
    out.print("stopped" if stopped else "no local node was running")


@app.command("status")
def status() -> None:
    """Exit 0 when the broker answers, 1 when it does not."""
    from tooling.local import rabbitmq as rabbitmq_local

    url = cli_settings().amqp_url.get_secret_value()
    if rabbitmq_local.broker_answers(url):
        out.print(f"RabbitMQ answers at {redact_url(url)}", markup=False)
        return
    out.print(f"RabbitMQ does not answer at {redact_url(url)}", markup=False)
    raise typer.Exit(1)

"""The ``herald`` command line."""

from __future__ import annotations

import typer

from producers.cli import broker_cmd, contacts, demo, history, publish, sandbox, schema, worker

app = typer.Typer(
    name="herald",
    help="herald: billing events to SMS, email and Direct Debit, over RabbitMQ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("schema")(schema.schema)
app.command("publish")(publish.publish)
app.command("history")(history.history)
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.add_typer(contacts.app, name="contacts")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(broker_cmd.app, name="broker")


def main() -> None:
    """Console-script entry point."""
    app()

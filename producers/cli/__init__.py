"""The ``herald`` command line."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from infra.errors import ConfigurationError
from infra.logs import configure_logging
from infra.settings import Settings, get_settings
from producers.cli import (
    api_cmd,
    contacts,
    context,
    credits,
    dlq,
    gocardless_cmd,
    history,
    integrations,
    keys_cmd,
    notify,
    orgs,
    outbox_cmd,
    publish,
    reminders_show,
    scheduler_cmd,
    schema,
    status,
    status_sweep_cmd,
    templates_cmd,
    webhooks_cmd,
    worker,
)
from producers.cli.console import err
from producers.cli.tooling import add_tooling_commands

app = typer.Typer(
    name="herald",
    help="herald: billing events to SMS, email and Direct Debit, over RabbitMQ.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(ctx: typer.Context) -> None:
    # The one place the CLI reads its settings; every command takes them from the invocation
    # (producers.cli.context). A caller running the CLI in-process may give its own as ``obj``.
    try:
        settings = ctx.obj if isinstance(ctx.obj, Settings) else get_settings()
    except ValidationError as exc:  # names each wrong HERALD_ variable; never echoes its value
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    ctx.obj = settings
    context.begin(settings)
    ctx.call_on_close(context.end)
    configure_logging(settings, "WARNING" if settings.log_level == "INFO" else settings.log_level, "console")


app.command("schema")(schema.schema)
app.command("publish")(publish.publish)
app.command("history")(history.history)
app.command("worker")(worker.worker)
app.command("api")(api_cmd.api)
app.command("scheduler")(scheduler_cmd.scheduler)
app.command("status")(status.status)
app.command("status-sweep")(status_sweep_cmd.status_sweep)
app.add_typer(contacts.app, name="contacts")
app.add_typer(orgs.app, name="orgs")
app.add_typer(reminders_show.app, name="reminders")
app.add_typer(dlq.app, name="dlq")
app.add_typer(outbox_cmd.app, name="outbox")
app.add_typer(templates_cmd.app, name="templates")
app.add_typer(credits.app, name="credits")
app.add_typer(notify.app, name="notify")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(webhooks_cmd.app, name="webhooks")
app.add_typer(integrations.app, name="integrations")
app.add_typer(gocardless_cmd.gocardless_app, name="gocardless")
app.add_typer(gocardless_cmd.sync_app, name="sync")
app.add_typer(gocardless_cmd.payments_app, name="payments")


add_tooling_commands(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except ConfigurationError as exc:  # settings that cannot run (e.g. classic queues on a cluster)
        err.print(f"error: {exc}", markup=False)
        raise SystemExit(2) from None

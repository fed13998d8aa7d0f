"""``herald reminders show``: an invoice's reminder schedule."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from producers.cli.console import err, out
from producers.cli.store import open_store
from producers.operations.reminder_schedule import reminder_schedule

app = typer.Typer(
    help="Payment reminders of an invoice: planned, moved, held, deferred, sent.", no_args_is_help=True
)


@app.command("show")
def show(
    invoice: str = typer.Option(..., "--invoice", help="Invoice id."),
    org: str = typer.Option(..., "--org", help="Organisation id."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table."),
) -> None:
    """Every reminder of the invoice with its local and UTC time, its state and why."""
    lines = reminder_schedule(open_store(), org, invoice)
    if lines is None:
        err.print(f"error: {org} has no invoice {invoice}", markup=False)
        raise typer.Exit(1)
    if as_json:
        for line in lines:
            typer.echo(json.dumps(line))
        return
    table = Table("offset", "state", "local", "UTC", "reason")
    for line in lines:
        table.add_row(line["offset"], line["state"], line["local"], line["utc"], line["reason"] or "")
    out.print(table)

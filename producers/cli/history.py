"""``herald history``: the transaction's history of an invoice."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from infra.store.history import contact_history, invoice_history
from producers.cli.console import out
from producers.cli.store import open_store
from producers.operations.views import mask_history


def _detail(entry: dict[str, Any]) -> str:
    what = entry["what"]
    if what == "event_received":
        return f"{entry['type']} {entry['event_id']} ({entry['outcome']})"
    if what == "decided":
        consent = entry.get("consent")
        why = (
            f" (consent #{consent['id']}: {consent['toggle']} off by {consent['source']} {consent['at']})"
            if consent
            else ""
        )
        return f"{entry['kind']} → {entry['contact_id']}: {entry['reason']}{why}"
    if what == "payment_status":
        amount = f"{entry['amount_minor'] / 100:.2f} {entry['currency']}"
        return f"Direct Debit {entry['payment_id']} {entry['status']} ({amount})"
    if what == "reminder":
        said = f"reminder {entry['offset_days']:+d} {entry['status']}"
        if entry.get("moved_from"):
            return f"{said}, moved from {entry['moved_from']} ({entry['reason']})"
        return f"{said}: {entry['reason']}" if entry.get("reason") else said
    if what == "warning":
        return f"{entry['kind']}: {entry['detail']}"
    if what == "attempt":
        if not entry.get("outcome"):
            return f"attempt {entry['attempts']}"
        answer = [str(p) for p in (entry.get("http_status"), entry.get("error_code")) if p is not None]
        waited = f", retry after {entry['retry_after']:g}s" if entry.get("retry_after") is not None else ""
        said = f" ({' '.join(answer)}{waited})" if answer or waited else ""
        at = f" at {entry['provider']}" if entry.get("provider") else ""
        return f"attempt {entry['attempts']}{at}: {entry['outcome']}{said}"
    parts = [p for p in (entry.get("provider_id"), entry.get("error_code"), entry.get("detail")) if p]
    return " ".join(str(p) for p in parts) + f" (from {entry['source']})"


def history(
    invoice: str | None = typer.Option(None, "--invoice", help="Invoice id: the transaction's history."),
    contact: str | None = typer.Option(None, "--contact", help="Contact id: the contact's activity."),
    org: str | None = typer.Option(None, "--org", help="Only this organisation."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    reveal: bool = typer.Option(False, "--reveal", help="Show full phone numbers and addresses."),
) -> None:
    """Print an invoice's timeline, or a contact's activity: events, decisions, sends and statuses."""
    if (invoice is None) == (contact is None):
        raise typer.BadParameter("give exactly one of --invoice and --contact")
    with open_store().transaction() as conn:
        if invoice is not None:
            data = invoice_history(conn, invoice, org)
        else:
            data = contact_history(conn, str(contact), org)
    if not reveal:
        data = mask_history(data)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        if not data["events"]:
            raise typer.Exit(1)  # as the table does: nothing known of it is an answer, but not a found one
        return
    subject = f"invoice {invoice}" if invoice is not None else f"contact {contact}"
    if not data["events"]:
        out.print(f"no events for {subject}")
        raise typer.Exit(1)
    table = Table(title=subject)
    for column in ("time", "what", "channel", "recipient", "detail"):
        table.add_column(column)
    for entry in data["timeline"]:
        table.add_row(
            entry["at"], entry["what"], entry.get("channel", ""), entry.get("recipient", ""), _detail(entry)
        )
    out.print(table)

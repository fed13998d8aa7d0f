"""``herald notify``: manual notify for a stored invoice, reminder or payment; preview, then send."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from infra.masking import mask_recipient
from producers.cli.console import out, refusals
from producers.cli.store import open_store
from producers.operations.notify import Prepared, prepare, send_prepared
from workers.rules.preview import PreviewLine

app = typer.Typer(
    help="Manual notify: preview exactly what would be sent, then send it.", no_args_is_help=True
)


def _prepare(
    invoice: str, org: str | None, event_id: str | None, kind: str | None, channel: str | None
) -> Prepared:
    with refusals():
        return prepare(open_store(), invoice, org_id=org, event_id=event_id, kind=kind, channel=channel)


def _show(lines: list[PreviewLine], digest: str, reveal: bool, as_json: bool) -> None:
    shown = [
        {**asdict(line), "recipient": line.recipient if reveal else mask_recipient(line.recipient)}
        for line in lines
    ]
    if as_json:
        typer.echo(json.dumps({"preview": digest, "recipients": shown}, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"preview {digest}")
    for column in (
        "contact",
        "channel",
        "recipient",
        "outcome",
        "message",
        "encoding",
        "chars",
        "segments",
        "cost",
    ):
        table.add_column(column)
    for line in shown:
        numbers = [str(line[k] or "") for k in ("characters", "segments", "cost")]
        table.add_row(
            line["contact_id"],
            line["channel"],
            line["recipient"],
            line["reason"],
            line["text"],
            line["encoding"],
            *numbers,
        )
    out.print(table)
    out.print(f"send exactly this with: herald notify send ... --preview {digest}", markup=False)


@app.command("preview")
def preview(
    invoice: str = typer.Option(..., "--invoice", help="Invoice id."),
    org: str | None = typer.Option(None, "--org"),
    event: str | None = typer.Option(None, "--event", help="Which stored event (default: the latest)."),
    kind: str | None = typer.Option(None, "--kind", help="invoice | payment_reminder | payment_thank_you"),
    channel: str | None = typer.Option(None, "--channel", help="sms | email (default: both)"),
    reveal: bool = typer.Option(False, "--reveal", help="Show full numbers and addresses."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Each recipient: number or address, the message, encoding, segments and cost, or why it is skipped."""
    prepared = _prepare(invoice, org, event, kind, channel)
    _show(prepared.lines, prepared.fingerprint, reveal, as_json)


@app.command("send")
def send(
    invoice: str = typer.Option(..., "--invoice", help="Invoice id."),
    preview_id: str = typer.Option(..., "--preview", help="The id a preview printed: nothing else is sent."),
    org: str | None = typer.Option(None, "--org"),
    event: str | None = typer.Option(None, "--event"),
    kind: str | None = typer.Option(None, "--kind"),
    channel: str | None = typer.Option(None, "--channel"),
) -> None:
    """Send exactly what the preview showed, recorded in history as a manual send."""
    prepared = _prepare(invoice, org, event, kind, channel)
    with refusals():
        event_id, pending = send_prepared(open_store(), prepared, preview_id)
    out.print(
        f"sent {len(pending)} notification(s) as {event_id}; see: herald history --invoice {invoice}",
        markup=False,
    )

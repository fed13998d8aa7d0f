"""``herald notify``: manual notify for a stored invoice, reminder or payment; preview, then send."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import typer
from rich.table import Table
from sqlalchemy import select

from infra.bootstrap import Services
from infra.masking import mask_recipient
from infra.store.directory import load_customer
from infra.store.notifications import (
    NewNotification,
    load_notification,
    record_event,
    record_notifications,
    store_rendered,
)
from infra.store.organisations import load_org
from infra.store.tables import events
from infra.store.templates import greeting_names, load_overrides
from producers.cli.console import err, out
from producers.cli.store import open_store
from schemas.events import EVENT_TYPES, Event, event_adapter
from schemas.notifications import Kind
from schemas.validation import event_to_json
from workers.rules.preview import PreviewLine, build_preview, fingerprint

app = typer.Typer(
    help="Manual notify: preview exactly what would be sent, then send it.", no_args_is_help=True
)
KIND_OF = {
    "invoice.created": Kind.INVOICE,
    "reminder.due": Kind.PAYMENT_REMINDER,
    "payment.received": Kind.PAYMENT_THANK_YOU,
}


def _prepare(
    invoice: str, org: str | None, event_id: str | None, kind: str | None, channel: str | None
) -> tuple[Services, Event, Kind, list[PreviewLine]]:
    svc = open_store()
    with svc.transaction() as conn:
        query = select(events).where(events.c.invoice_id == invoice)
        if org:
            query = query.where(events.c.org_id == org)
        if event_id:
            query = query.where(events.c.event_id == event_id)
        rows = conn.execute(query.order_by(events.c.received_at)).mappings()
        # Upstream events only: herald's own (mandate.setup_requested) are not invoices to notify of.
        stored = [r for r in rows if r["outcome"] != "manual" and r["type"] in EVENT_TYPES]
        if not stored:
            which = f" ({event_id})" if event_id else ""
            err.print(f"error: no stored event for invoice {invoice}{which}", markup=False)
            raise typer.Exit(1)
        event: Event = event_adapter.validate_python(stored[-1]["payload"])
        chosen = Kind(kind) if kind else KIND_OF[event.type]
        lines = build_preview(
            chosen,
            event,
            load_org(conn, event.org_id, svc.settings.default_region),
            load_customer(conn, event.org_id, event.customer_id),
            names=greeting_names(conn, event.org_id, event.customer_id, ""),
            overrides=load_overrides(conn, event.org_id),
            default_from=svc.settings.twilio_from,
            channel=channel,
        )
    return svc, event, chosen, lines


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
    _, _, _, lines = _prepare(invoice, org, event, kind, channel)
    _show(lines, fingerprint(lines), reveal, as_json)


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
    from infra.broker import emit  # the broker is built only when something is sent
    from schemas.messages import NotificationRendered

    svc, source, chosen, lines = _prepare(invoice, org, event, kind, channel)
    digest = fingerprint(lines)
    if digest != preview_id:
        err.print(
            f"error: what would be sent changed since preview {preview_id} (now {digest}); preview again",
            markup=False,
        )
        raise typer.Exit(1)
    manual = source.model_copy(update={"event_id": f"manual-{digest}-{uuid.uuid4().hex[:8]}"})
    items = [
        NewNotification(
            line.contact_id,
            chosen.value,
            line.channel,
            line.recipient,
            line.locale or "en",
            line.reason,
            line.reason == "send",
            line.sender,
        )
        for line in lines
    ]
    bodies = {(line.contact_id, line.recipient): line.text for line in lines if line.channel == "sms"}
    with svc.transaction() as conn:
        record_event(conn, manual, event_to_json(manual), "manual")
        pending = record_notifications(conn, manual, items)
        for nid in pending:
            row = load_notification(conn, nid)
            if row is not None:  # the previewed text, not a fresh rendering
                store_rendered(conn, nid, bodies[(row["contact_id"], row["recipient"])])
    for nid in pending:
        emit(NotificationRendered(notification_id=nid))
    out.print(
        f"sent {len(pending)} SMS as {manual.event_id}; see: herald history --invoice {invoice}", markup=False
    )

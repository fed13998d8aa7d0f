"""``herald contacts``: load the directory, change toggles in bulk, show a contact."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import typer
from rich.table import Table

from infra.store.consent import consent_trail
from infra.store.directory import refresh_statistics
from infra.store.suppression import lift_suppression, list_suppressions
from infra.store.toggles import contact_details, load_toggles
from producers.cli.console import err, out
from producers.cli.store import open_store
from producers.imports import HeaderError, Row, read_directory
from producers.operations.directory import change_toggles, import_customer
from producers.operations.views import mask_consent, mask_contact
from schemas.toggles import EMAIL_CATEGORIES, Action, ToggleRequest

app = typer.Typer(help="Load the contact directory, change toggles, show a contact.", no_args_is_help=True)


def _where(row: Row) -> str:
    return f"line {row.lines[0]}" if len(row.lines) == 1 else f"lines {', '.join(map(str, row.lines))}"


@app.command("import")
def import_(file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True)) -> None:
    """Upsert customers from JSON Lines (one customer per line) or CSV (``.csv``: one row per
    customer, contact and email address). Toggles may be set in the file too.

    Idempotent: importing the same file twice changes nothing the second time.
    Each row is reported (created, updated, unchanged, failed with the reason);
    a bad row (not UTF-8, too deep, too long, a bad field) never stops the others;
    exit status 1 when any row failed.
    """
    svc = open_store()
    counts: Counter[str] = Counter()
    limits = {"max_line_bytes": svc.settings.api_max_body_bytes, "max_depth": svc.settings.max_json_depth}
    try:
        rows = list(read_directory(file, **limits))
    except HeaderError as exc:
        err.print(f"line 1: failed: {exc}", markup=False)
        out.print("0 created, 0 updated, 0 unchanged, 1 failed (nothing imported)")
        raise typer.Exit(1) from None
    for row in rows:
        if row.record is None:
            counts["failed"] += 1
            err.print(f"{_where(row)}: failed: {row.error}", markup=False)
            continue
        record = row.record
        result = import_customer(svc, record, named=row.named)
        if result.outcome is None:
            counts["failed"] += 1
            err.print(f"{_where(row)}: failed: {result.error}", markup=False)
            continue
        counts[result.outcome] += 1
        suffix = f" (warning: {'; '.join(result.warnings)})" if result.warnings else ""
        out.print(
            f"{_where(row)}: {record.org_id}/{record.customer_id}: {result.outcome}{suffix}", markup=False
        )
    if counts["created"] or counts["updated"]:
        with svc.transaction() as conn:
            refresh_statistics(conn)  # the traffic that follows an import is planned on them
    out.print(
        f"{counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed"
    )
    if counts["failed"]:
        raise typer.Exit(1)


def _contact_ids(path: Path) -> list[str]:
    """The ids of a ``--contacts-file``, one a line; a line that is not UTF-8 refuses the file
    (naming the line) before anything changes."""
    ids: list[str] = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
        except UnicodeDecodeError as exc:
            raise typer.BadParameter(
                f"line {number}: not valid UTF-8: byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}",
                param_hint="--contacts-file",
            ) from None
        if line:
            ids.append(line)
    return ids


def _action(value: str) -> Action:
    try:
        return Action(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: use keep, enable or disable") from None


@app.command("toggles")
def toggles(
    org: str = typer.Option(..., "--org", help="Organisation."),
    contacts: str | None = typer.Option(None, "--contacts", help="Comma-separated contact ids."),
    contacts_file: Path | None = typer.Option(
        None, "--contacts-file", help="A file of contact ids, one a line.", exists=True, dir_okay=False
    ),
    customer: str | None = typer.Option(None, "--customer", help="Every contact of this customer."),
    all_contacts: bool = typer.Option(False, "--all", help="Every contact of the organisation."),
    sms: str = typer.Option("keep", help="keep | enable | disable"),
    notify: str = typer.Option("keep", help="Email notify toggle of every address: keep | enable | disable"),
    new_invoice: str = typer.Option("keep"),
    pending_reminders: str = typer.Option("keep"),
    payment_confirmation: str = typer.Option("keep"),
    refunds: str = typer.Option("keep"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would change; write nothing."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Change toggles for a list of contacts or a filter; report per contact what changed or failed."""
    chosen = sum(x is not None for x in (contacts, contacts_file, customer)) + int(all_contacts)
    if chosen != 1:
        raise typer.BadParameter("give exactly one of --contacts, --contacts-file, --customer, --all")
    request = ToggleRequest(
        sms=_action(sms),
        notify=_action(notify),
        categories={
            "new_invoice": _action(new_invoice),
            "pending_reminders": _action(pending_reminders),
            "payment_confirmation": _action(payment_confirmation),
            "refunds": _action(refunds),
        },
    )
    ids: list[str] | None = None
    if contacts is not None:
        ids = [c.strip() for c in contacts.split(",") if c.strip()]
    elif contacts_file is not None:
        ids = _contact_ids(contacts_file)
    report = change_toggles(open_store(), org, request, ids=ids, customer_id=customer, dry_run=dry_run)
    failed = sum(r["result"] == "failed" for r in report)
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, "contacts": report}, indent=2))
    else:
        prefix = "(dry run) " if dry_run else ""
        for item in report:
            detail = item.get("reason") or ", ".join(item.get("changes", [])) or "nothing to change"
            out.print(f"{prefix}{item['contact_id']}: {item['result']}: {detail}", markup=False)
        changed = sum(r["result"] == "changed" for r in report)
        out.print(f"{prefix}{changed} changed, {len(report) - changed - failed} unchanged, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command("show")
def show(
    contact_id: str = typer.Argument(..., help="Contact id."),
    org: str = typer.Option(..., "--org", help="Organisation."),
    as_json: bool = typer.Option(False, "--json"),
    reveal: bool = typer.Option(False, "--reveal", help="Show full phone numbers and addresses."),
) -> None:
    """A contact's toggles, its customers and its recent activity."""
    with open_store().transaction() as conn:
        details = contact_details(conn, org, contact_id)
    if details is None:
        err.print(f"error: no contact {contact_id} in organisation {org}", markup=False)
        raise typer.Exit(1)
    if not reveal:
        details = mask_contact(details)
    if as_json:
        typer.echo(json.dumps(details, indent=2, default=str))
        return
    sms = details["sms_enabled"]
    sms_text = "default" if sms is None else "on" if sms else "off"
    out.print(
        f"{details['contact_id']} {details['name']} · {details['mobile'] or 'no mobile'}"
        f" · {details['locale']} · {details['status']} · sms {sms_text}"
        f"{' · OPTED OUT' if details['sms_opted_out'] else ''}",
        markup=False,
    )
    for link in details["customers"]:
        role = "primary" if link["primary"] else "contact person"
        choice = link.get("contact_sms_choice")
        chosen = "" if choice is None else f"; their SMS choice: {'on' if choice else 'off'}"
        out.print(f"  customer {link['customer_id']} ({role}{chosen})", markup=False)
    for email in details["emails"]:
        off = [c for c in EMAIL_CATEGORIES if not email["categories"][c]]
        out.print(
            f"  {email['address']}: notify {'on' if email['notify'] else 'off'}"
            f"{'; off: ' + ', '.join(off) if off else ''}",
            markup=False,
        )
    table = Table(title="recent activity")
    for column in ("time", "invoice", "kind", "channel", "recipient", "reason", "status"):
        table.add_column(column)
    for n in details["activity"]:
        table.add_row(
            n["at"], n["invoice_id"], n["kind"], n["channel"], n["recipient"], n["reason"], n["status"]
        )
    out.print(table)


@app.command("consent")
def consent(
    contact: str = typer.Option(..., "--contact", help="Contact id."),
    org: str = typer.Option(..., "--org", help="Organisation."),
    as_json: bool = typer.Option(False, "--json"),
    reveal: bool = typer.Option(False, "--reveal", help="Show full addresses."),
) -> None:
    """A contact's consent trail: every change of their toggles, when, from where, by whom."""
    with open_store().reading() as conn:
        known = load_toggles(conn, org, contact) is not None
        rows = consent_trail(conn, org, contact) if known else []
    if not known:
        err.print(f"error: no contact {contact} in organisation {org}", markup=False)
        raise typer.Exit(1)
    if not reveal:
        rows = mask_consent(rows)
    if as_json:
        typer.echo(json.dumps({"contact_id": contact, "consent": rows}, indent=2))
        return
    table = Table(title=f"consent trail of {contact}")
    for column in ("#", "time", "toggle", "change", "source", "who", "detail"):
        table.add_column(column)
    for r in rows:
        change = f"{_onoff(r['old'])} → {_onoff(r['new'])}"
        table.add_row(str(r["id"]), r["at"], r["toggle"], change, r["source"], r["actor"], r["detail"] or "")
    out.print(table)
    if not rows:
        out.print("no changes recorded", markup=False)


def _onoff(value: bool | None) -> str:
    return "-" if value is None else "on" if value else "off"


@app.command("suppressions")
def suppressions(
    org: str = typer.Option(..., "--org", help="Organisation."),
    lift: str | None = typer.Option(None, "--lift", help="Email this address again."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The addresses suppressed after a hard bounce, or ``--lift ADDRESS`` to email it again."""
    svc = open_store()
    if lift is not None:
        with svc.transaction() as conn:
            count = lift_suppression(conn, org, lift, actor="cli")
        if not count:
            err.print(f"error: {lift} is not suppressed in organisation {org}", markup=False)
            raise typer.Exit(1)
        out.print(f"{lift}: suppression lifted ({count} contact(s))", markup=False)
        return
    with svc.reading() as conn:
        rows = list_suppressions(conn, org)
    if as_json:
        typer.echo(json.dumps({"suppressions": rows}, indent=2))
        return
    for r in rows:
        out.print(f"{r['address']} ({r['contact_id']}) since {r['since']}: {r['reason']}", markup=False)
    out.print(f"{len(rows)} suppressed", markup=False)
